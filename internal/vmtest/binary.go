package vmtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/graft-live/graft/internal/flock"
	"github.com/graft-live/graft/kernel"
)

// binaryMaxAge is how long a test binary of graft stays in the cache after
// it was last built. Test processes that use it run far shorter (make test
// allows 80 minutes), so a binary this old belongs to nobody.
const binaryMaxAge = 24 * time.Hour

// Names in the graft cache's vm directory.
const (
	binaryPrefix = "graft-test-"        // + content hash: a built binary
	buildPrefix  = ".graft-test-build-" // a build in progress (or abandoned)
	legacyBinary = "graft-test"         // the one shared binary of older versions
	binaryLock   = "graft-test.lock"
)

var (
	graftOnce sync.Once
	graftPath string
	graftErr  error
)

// GraftBinary builds graft from this source tree (once per process) as a
// static binary for the guest, and returns its path.
//
// The binary lives in the graft cache under a name derived from its content,
// vm/graft-test-HASH, so every test process boots exactly the binary it
// built, even while processes of other source trees (worktrees of this
// repository) build theirs, and processes that build the same bytes share
// one file. Each build removes the binaries that nobody has built for a day.
func GraftBinary() (string, error) {
	graftOnce.Do(func() { graftPath, graftErr = buildGraft() })
	return graftPath, graftErr
}

func buildGraft() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("build graft: cannot locate the source tree")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cacheDir, err := kernel.CacheDir()
	if err != nil {
		return "", fmt.Errorf("build graft: %w", err)
	}
	dir := filepath.Join(cacheDir, "vm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build graft: %w", err)
	}
	f, err := os.CreateTemp(dir, buildPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("build graft: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp) // gone after the rename; left only on failure
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/graft")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/graft: %w\n%s", err, out)
	}
	sum, err := fileHash(tmp)
	if err != nil {
		return "", fmt.Errorf("build graft: %w", err)
	}
	bin := filepath.Join(dir, binaryPrefix+sum)
	// The lock orders the rename against the pruning of other processes, so
	// that a fresh binary is never taken for an old one of the same name;
	// the modification time says when the binary was last built.
	err = flock.Do(context.Background(), filepath.Join(dir, binaryLock), func() error {
		now := time.Now()
		if err := os.Chtimes(tmp, now, now); err != nil {
			return err
		}
		if err := os.Rename(tmp, bin); err != nil {
			return err
		}
		pruneBinaries(dir, now.Add(-binaryMaxAge))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("build graft: %w", err)
	}
	return bin, nil
}

// fileHash is the first 128 bits of the file's SHA-256, in hex.
func fileHash(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// pruneBinaries removes the test binaries and abandoned builds in dir that
// were last written before cutoff. Failures only leave a file behind.
func pruneBinaries(dir string, cutoff time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, binaryPrefix) && !strings.HasPrefix(name, buildPrefix) && name != legacyBinary {
			continue
		}
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(dir, name))
		}
	}
}
