// Command echoserver runs one library's WebSocket echo server, or the plain TCP floor, for
// the load generator to measure.
//
//	echoserver -lib ours|gorilla|coder|gobwas|gws|floor|ours-deflate|… -addr 127.0.0.1:0
//	echoserver -list
//
// -list prints the servers it knows, one a line. On startup it prints one line,
// "pid=PID addr=HOST:PORT", so that a script can find the address it listens on and the
// process whose CPU time and memory to read. It serves until killed; with -cpuprofile or
// -memprofile, SIGINT or SIGTERM first writes the profiles. With -memstats FILE, SIGUSR2
// writes the live heap (after a collection), the goroutine stacks and the goroutines to
// FILE as JSON, for the idle scenario.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/hybi/websocket/bench/internal/echo"
)

func main() {
	lib := flag.String("lib", "ours", "server to run: "+strings.Join(echo.Libs, ", "))
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file when stopped by SIGINT or SIGTERM")
	memprofile := flag.String("memprofile", "", "write a heap profile to this file when stopped by SIGINT or SIGTERM")
	list := flag.Bool("list", false, "print the servers known, one a line, and exit")
	memstats := flag.String("memstats", "", "on SIGUSR2, collect garbage and write the live heap and goroutines as JSON to this file (for the idle scenario)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("echoserver: ")

	if *list {
		fmt.Println(strings.Join(echo.Libs, "\n"))
		return
	}

	if !echo.Known(*lib) {
		log.Fatalf("unknown -lib %q (known: %s)", *lib, strings.Join(echo.Libs, ", "))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *cpuprofile != "" || *memprofile != "" {
		stop, err := startProfiles(*cpuprofile, *memprofile)
		if err != nil {
			log.Fatal(err)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			<-sig
			if err := stop(); err != nil {
				log.Fatal(err)
			}
			os.Exit(0)
		}()
	}
	// SIGUSR1 prints what a heap profile does not show: goroutine stacks and the heap's
	// own size, for the idle scenario's memory per connection.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			log.Printf("goroutines %d, stacks %d KiB, heap in use %d KiB, live objects %d KiB",
				runtime.NumGoroutine(), ms.StackInuse>>10, ms.HeapInuse>>10, ms.HeapAlloc>>10)
		}
	}()
	if *memstats != "" {
		writeMemStatsOn(syscall.SIGUSR2, *memstats)
	}
	// A write to a connection the client has reset fails with EPIPE whether or not
	// SIGPIPE is delivered; ignored, it is not, which spares every server the signal's
	// handling on teardown and spares callgrind (valgrind 3.19) a signal it can lose
	// track of: it aborts in vgCallgrind_post_signal when gws answers a reset
	// connection.
	signal.Ignore(syscall.SIGPIPE)
	fmt.Printf("pid=%d addr=%s\n", os.Getpid(), ln.Addr())
	if err := echo.Serve(ln, *lib); err != nil {
		log.Fatal(err)
	}
}

// startProfiles starts the CPU profile, if cpu names a file, and returns the function
// that stops it and writes the heap profile, if heap names a file.
func startProfiles(cpu, heap string) (stop func() error, err error) {
	var cpuFile *os.File
	if cpu != "" {
		if cpuFile, err = os.Create(cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			return nil, err
		}
	}
	return func() error {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				return err
			}
		}
		if heap == "" {
			return nil
		}
		f, err := os.Create(heap)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

// writeMemStatsOn writes, on each sig, the live heap after a collection and the
// goroutines to file as load.MemStats reads them: into a temporary file renamed over it,
// so that a reader never sees half of it.
func writeMemStatsOn(sig os.Signal, file string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	go func() {
		for range ch {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b, _ := json.Marshal(map[string]uint64{
				"heap_alloc":  ms.HeapAlloc,
				"stack_inuse": ms.StackInuse,
				"goroutines":  uint64(runtime.NumGoroutine()),
			})
			tmp := file + ".tmp"
			if err := os.WriteFile(tmp, b, 0o644); err != nil {
				log.Print(err)
				continue
			}
			if err := os.Rename(tmp, file); err != nil {
				log.Print(err)
			}
		}
	}()
}
