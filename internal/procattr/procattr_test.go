package procattr

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
)

// On Linux the attributes are set, and a program started with them runs.
func TestAttributesOnLinux(t *testing.T) {
	var a syscall.SysProcAttr
	died := DieWithParent(&a)
	if got, want := died, runtime.GOOS == "linux"; got != want {
		t.Fatalf("DieWithParent = %v on %s", got, runtime.GOOS)
	}
	if !died {
		return
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &a
	if err := cmd.Run(); err != nil {
		t.Fatalf("a program with a parent-death signal: %v", err)
	}
	var b syscall.SysProcAttr
	if !IntoCgroup(&b, 7) || !b.UseCgroupFD || b.CgroupFD != 7 {
		t.Errorf("IntoCgroup set %+v", b)
	}
	if NoCgroup(&b); b.UseCgroupFD || b.CgroupFD != 0 {
		t.Errorf("NoCgroup left %+v", b)
	}
}
