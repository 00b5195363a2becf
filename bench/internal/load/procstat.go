package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// readCPU returns the user plus system CPU time process pid has used, or 0 when pid is 0.
func readCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields are counted after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("load: unexpected %s", procPath(pid, "stat"))
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("load: unexpected %s", procPath(pid, "stat"))
	}
	// Fields 14 (utime) and 15 (stime) of proc(5); f[0] is field 3.
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("load: %s: %w", procPath(pid, "stat"), err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// readRSS returns the resident memory of process pid in KiB, or 0 when pid is 0.
func readRSS(pid int) (int64, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v) // "1234 kB"
			if len(f) == 2 && string(f[1]) == "kB" {
				return strconv.ParseInt(string(f[0]), 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("load: no VmRSS in %s", procPath(pid, "status"))
}

func procPath(pid int, name string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + name
}

// memStats is what echoserver -memstats writes on SIGUSR2.
type memStats struct {
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	Goroutines uint64 `json:"goroutines"`
}

// readMemStats has process pid write its memory statistics to file (SIGUSR2) and reads
// them, waiting up to 10 s for the file.
func readMemStats(pid int, file string) (memStats, error) {
	var ms memStats
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return ms, err
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		return ms, fmt.Errorf("load: memory statistics: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(file)
		if err == nil {
			if err := json.Unmarshal(b, &ms); err != nil {
				return ms, fmt.Errorf("load: %s: %w", file, err)
			}
			return ms, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return ms, err
		}
		if time.Now().After(deadline) {
			return ms, fmt.Errorf("load: no memory statistics in %s after 10 s", file)
		}
	}
}

// ReadPeakRSS returns the peak resident memory of process pid in KiB (VmHWM).
func ReadPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(v)
			if len(f) == 2 && string(f[1]) == "kB" {
				return strconv.ParseInt(string(f[0]), 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("load: no VmHWM in %s", procPath(pid, "status"))
}
