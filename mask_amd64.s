//go:build !purego

#include "textflag.h"

// func maskSSE2(b []byte, k uint64)
TEXT ·maskSSE2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), DI
	MOVQ b_len+8(FP), CX
	MOVQ k+24(FP), X0
	SHRQ $6, CX // 64-byte blocks
	JZ   done

	PUNPCKLQDQ X0, X0 // k in both halves of X0

sse2:
	// Four independent loads, XORs and stores a round, so that they overlap.
	MOVOU 0(DI), X1
	MOVOU 16(DI), X2
	MOVOU 32(DI), X3
	MOVOU 48(DI), X4
	PXOR  X0, X1
	PXOR  X0, X2
	PXOR  X0, X3
	PXOR  X0, X4
	MOVOU X1, 0(DI)
	MOVOU X2, 16(DI)
	MOVOU X3, 32(DI)
	MOVOU X4, 48(DI)
	ADDQ  $64, DI
	DECQ  CX
	JNZ   sse2

done:
	RET

// func maskAVX2(b []byte, k uint64)
TEXT ·maskAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), DI
	MOVQ b_len+8(FP), CX
	MOVQ k+24(FP), X0
	SHRQ $6, CX // 64-byte blocks
	JZ   avx2done

	VPBROADCASTQ X0, Y0 // k in all four quarters of Y0

avx2loop:
	// Two blocks a round while two are left.
	CMPQ    CX, $2
	JB      avx2last
	VPXOR   0(DI), Y0, Y1
	VPXOR   32(DI), Y0, Y2
	VPXOR   64(DI), Y0, Y3
	VPXOR   96(DI), Y0, Y4
	VMOVDQU Y1, 0(DI)
	VMOVDQU Y2, 32(DI)
	VMOVDQU Y3, 64(DI)
	VMOVDQU Y4, 96(DI)
	ADDQ    $128, DI
	SUBQ    $2, CX
	JMP     avx2loop

avx2last:
	TESTQ   CX, CX
	JZ      avx2done
	VPXOR   0(DI), Y0, Y1
	VPXOR   32(DI), Y0, Y2
	VMOVDQU Y1, 0(DI)
	VMOVDQU Y2, 32(DI)

avx2done:
	VZEROUPPER // SSE code that follows would otherwise run slowly
	RET

// func maskCopySSE2(dst, src []byte, k uint64)
TEXT ·maskCopySSE2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	MOVQ k+48(FP), X0
	SHRQ $6, CX // 64-byte blocks
	JZ   copydone

	PUNPCKLQDQ X0, X0

copysse2:
	MOVOU 0(SI), X1
	MOVOU 16(SI), X2
	MOVOU 32(SI), X3
	MOVOU 48(SI), X4
	PXOR  X0, X1
	PXOR  X0, X2
	PXOR  X0, X3
	PXOR  X0, X4
	MOVOU X1, 0(DI)
	MOVOU X2, 16(DI)
	MOVOU X3, 32(DI)
	MOVOU X4, 48(DI)
	ADDQ  $64, SI
	ADDQ  $64, DI
	DECQ  CX
	JNZ   copysse2

copydone:
	RET

// func maskCopyAVX2(dst, src []byte, k uint64)
TEXT ·maskCopyAVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	MOVQ k+48(FP), X0
	SHRQ $6, CX // 64-byte blocks
	JZ   copyavx2done

	VPBROADCASTQ X0, Y0

copyavx2loop:
	// Two blocks a round while two are left.
	CMPQ    CX, $2
	JB      copyavx2last
	VPXOR   0(SI), Y0, Y1
	VPXOR   32(SI), Y0, Y2
	VPXOR   64(SI), Y0, Y3
	VPXOR   96(SI), Y0, Y4
	VMOVDQU Y1, 0(DI)
	VMOVDQU Y2, 32(DI)
	VMOVDQU Y3, 64(DI)
	VMOVDQU Y4, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $2, CX
	JMP     copyavx2loop

copyavx2last:
	TESTQ   CX, CX
	JZ      copyavx2done
	VPXOR   0(SI), Y0, Y1
	VPXOR   32(SI), Y0, Y2
	VMOVDQU Y1, 0(DI)
	VMOVDQU Y2, 32(DI)

copyavx2done:
	VZEROUPPER
	RET

// func hasAVX2() bool
TEXT ·hasAVX2(SB), NOSPLIT, $0-1
	MOVB $0, ret+0(FP)
	XORL AX, AX
	CPUID // the highest leaf, in AX
	CMPL AX, $7
	JB   no

	MOVL $1, AX
	XORL CX, CX
	CPUID
	ANDL $0x18000000, CX // OSXSAVE (bit 27) and AVX (bit 28)
	CMPL CX, $0x18000000
	JNE  no

	XORL   CX, CX
	XGETBV           // XCR0, in DX:AX
	ANDL   $6, AX    // the operating system saves the SSE (bit 1) and AVX (bit 2) state
	CMPL   AX, $6
	JNE    no

	MOVL $7, AX
	XORL CX, CX
	CPUID
	BTL  $5, BX // AVX2
	JCC  no
	MOVB $1, ret+0(FP)

no:
	RET
