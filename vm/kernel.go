package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/graft-live/graft/kernel"
)

// compressors maps the magic of a compressed kernel payload inside a bzImage
// to the command that decompresses it to stdout.
var compressors = []struct {
	magic []byte
	cmd   []string
}{
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, []string{"xz", "-dcq"}},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, []string{"zstd", "-dcq"}},
	{[]byte{0x1f, 0x8b, 0x08}, []string{"gzip", "-dcq"}},
}

// extractVmlinux finds the compressed ELF kernel inside a bzImage, decompresses
// it into dir (once: the result is cached under the bzImage's hash) and
// returns its path. QEMU boots that ELF directly through its PVH entry
// (CONFIG_PVH), skipping the decompressor that dominates boot time under TCG.
func extractVmlinux(bzImage, dir string) (string, error) {
	data, err := os.ReadFile(bzImage)
	if err != nil {
		return "", fmt.Errorf("extract vmlinux: %w", err)
	}
	sum := sha256.Sum256(data)
	out := filepath.Join(dir, "vmlinux-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("extract vmlinux: %w", err)
	}
	var errs []error
	for _, c := range compressors {
		// The payload can start at any of several matches; the first one
		// whose decompression yields a valid ELF kernel wins.
		for off := 0; ; {
			i := bytes.Index(data[off:], c.magic)
			if i < 0 {
				break
			}
			off += i
			err := decompressELF(data[off:], c.cmd, out)
			if err == nil {
				return out, nil
			}
			errs = append(errs, err)
			off++
		}
	}
	if len(errs) == 0 {
		return "", fmt.Errorf("extract vmlinux from %s: no known compressed payload", bzImage)
	}
	return "", fmt.Errorf("extract vmlinux from %s: %w", bzImage, errors.Join(errs...))
}

func decompressELF(payload []byte, argv []string, out string) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".vmlinux-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Stdout = tmp
	// The payload is followed by the rest of the bzImage, which the
	// decompressor reports as trailing garbage: its exit status is not
	// trusted, the ELF check below is.
	runErr := cmd.Run()
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := checkKernelELF(tmp.Name()); err != nil {
		if runErr != nil {
			return fmt.Errorf("%s: %v", argv[0], runErr)
		}
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// checkKernelELF verifies that name is a complete x86-64 ELF executable.
func checkKernelELF(name string) error {
	f, err := elf.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return fmt.Errorf("%s is not an x86-64 kernel ELF", name)
	}
	st, err := os.Stat(name)
	if err != nil {
		return err
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Off+p.Filesz > uint64(st.Size()) {
			return fmt.Errorf("%s is truncated", name)
		}
	}
	return nil
}

// probeKVM reports whether QEMU can boot kernelPath under KVM on this host. The
// answer is cached for the host's boot (keyed by its boot_id) in the graft
// cache, where PrepareTarget keeps the extracted kernels: a broken KVM can
// hang for the whole probe timeout.
func probeKVM(ctx context.Context, qemuPath, kernelPath string) bool {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return false
	} else {
		f.Close()
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	dir, err := kernel.CacheDir()
	if err != nil {
		return false
	}
	cache := filepath.Join(dir, "vm", "kvm-probe-"+strings.TrimSpace(string(bootID)))
	if b, err := os.ReadFile(cache); err == nil {
		return string(b) == "ok"
	}
	ok := bootsUnderKVM(ctx, qemuPath, kernelPath)
	if ctx.Err() == nil {
		verdict := "fail"
		if ok {
			verdict = "ok"
		}
		if os.MkdirAll(filepath.Dir(cache), 0o755) == nil {
			os.WriteFile(cache, []byte(verdict), 0o644)
		}
	}
	return ok
}

// bootsUnderKVM boots kernelPath without a root file system: a working KVM
// gets as far as the "no root" panic, which -no-reboot turns into QEMU's
// exit.
func bootsUnderKVM(ctx context.Context, qemuPath, kernelPath string) bool {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemuPath, "-nodefaults", "-display", "none", "-no-reboot",
		"-accel", "kvm", "-cpu", "host", "-m", "256", "-kernel", kernelPath,
		"-append", "console=ttyS0 panic=-1", "-serial", "stdio")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	if err := cmd.Run(); err != nil {
		return false
	}
	return strings.Contains(out.String(), "Kernel panic")
}
