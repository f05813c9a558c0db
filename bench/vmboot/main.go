// Command vmboot measures graft vm's boot-to-command latency: the wall time
// from starting QEMU to the exit status of `true` in the guest, median of
// several runs, and where that time goes (the kernel's own timestamp of
// "Run /init" against the total).
//
// Reproduce with:
//
//	make build && go run ./bench/vmboot [-runs 5] [-accel tcg]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/graft-live/graft/vm"
)

var runInit = regexp.MustCompile(`\[\s*([0-9.]+)\] Run /init as init process`)

func main() {
	runs := flag.Int("runs", 5, "number of boots")
	accel := flag.String("accel", "tcg", "tcg, kvm or auto")
	graft := flag.String("graft", "bin/graft", "static graft binary (the guest's init)")
	cpus := flag.Int("cpus", 2, "guest CPUs")
	flag.Parse()

	ctx := context.Background()
	target, err := vm.PrepareTarget(ctx, "", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmboot:", err)
		os.Exit(1)
	}
	fmt.Printf("kernel %s, %s, %d guest CPUs, %d host CPUs\n", target.Kernel, *accel, *cpus, runtime.NumCPU())
	var total, kernel []float64
	for i := 0; i < *runs; i++ {
		var console bytes.Buffer
		start := time.Now()
		code, err := vm.Exec(ctx, vm.Config{
			Image: target.Image, Argv: []string{"true"}, Accel: *accel, CPUs: *cpus,
			Console:   &console,
			Initramfs: vm.Initramfs{Init: *graft, Busybox: target.Busybox},
		})
		d := time.Since(start).Seconds()
		if err != nil || code != 0 {
			fmt.Fprintf(os.Stderr, "vmboot: run %d: status %d, %v\n", i, code, err)
			os.Exit(1)
		}
		k := -1.0
		if m := runInit.FindSubmatch(console.Bytes()); m != nil {
			k, _ = strconv.ParseFloat(string(m[1]), 64)
		}
		total, kernel = append(total, d), append(kernel, k)
		fmt.Printf("run %d: %.2f s boot-to-exit, kernel reached /init at %.2f s (guest clock)\n", i+1, d, k)
	}
	fmt.Printf("median: %.2f s boot-to-exit; kernel boot until /init %.2f s; the rest (QEMU start, loading the ELF and initramfs, init, command, power-off) %.2f s\n",
		median(total), median(kernel), median(total)-median(kernel))
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
