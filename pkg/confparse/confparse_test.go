package confparse

import "testing"

func TestParse(t *testing.T) {
	conf := `# comment { ;
http {
    server_name "a;b" 'c}d' e\;f;
    init_by_lua_block { local t = { a = 1 } }
    set_by_lua_block $v { return ngx.var.a }
    location = "/x" { return 200 "ok # not a comment"; }
}
`
	ds, err := Parse(conf)
	if err != nil {
		t.Fatal(err)
	}
	want := "http/0 {\n server_name/3\n init_by_lua_block/1\n set_by_lua_block/2\n location/2 {\n  return/2\n }\n}\n"
	if got := Shape(ds); got != want {
		t.Errorf("shape:\n%s\nwant:\n%s", got, want)
	}
	sn := ds[0].Block[0]
	if sn.Args[0] != "a;b" || sn.Args[1] != "c}d" || sn.Args[2] != "e;f" {
		t.Errorf("args: %q", sn.Args)
	}
	for _, bad := range []string{"a {", "a;}", `a "b;`, "}", `a "b"c;`} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}
