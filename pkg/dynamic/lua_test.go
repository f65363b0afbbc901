package dynamic

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLuaUnits runs the pure-Lua unit tests (lua/test/*_test.lua) with
// luajit; they fail by exiting non-zero.
func TestLuaUnits(t *testing.T) {
	luajit, err := exec.LookPath("luajit")
	if err != nil {
		t.Skip("luajit is not installed")
	}
	root, err := filepath.Abs("../../lua")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "test", "*_test.lua"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Lua tests under %s: %v", root, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(luajit, f)
			cmd.Dir = root
			cmd.Env = append(cmd.Environ(), "LUA_PATH="+filepath.Join(root, "?.lua")+";;")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", f, err, out)
			}
		})
	}
}
