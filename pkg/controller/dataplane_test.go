package controller

import "testing"

func TestParseStubStatus(t *testing.T) {
	raw := "Active connections: 3 \nserver accepts handled requests\n 16 15 31 \nReading: 0 Writing: 1 Waiting: 2 \n"
	got, err := parseStubStatus(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"active": 3, "accepted": 16, "handled": 15, "requests": 31, "reading": 0, "writing": 1, "waiting": 2}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, err := parseStubStatus("<html>404</html>"); err == nil {
		t.Errorf("a page that is not stub_status parsed")
	}
}

func TestParseDataplaneAggregatesByLabels(t *testing.T) {
	// Two ports of one Service are one series: Prometheus sees no port.
	raw := "r\x1fshop/web\x1fa.io\x1f/api\x1fshop/web:80\x1fGET\x1f200\t3\n" +
		"r\x1fshop/web\x1fa.io\x1f/api\x1fshop/web:http\x1fGET\x1f200\t2\n" +
		"d\x1fshop/web\x1fa.io\x1f/api\x1fshop/web:80\x1f12\t1\n" +
		"e\x1fshop/web:80\x1f10.0.0.1:8080\x1ferror\t4\n" +
		"junk line\n"
	s, err := parseDataplane(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := route{namespace: "shop", ingress: "web", service: "web", host: "a.io", path: "/api"}
	st := s.routes[r]
	if st == nil || st.requests[[2]string{"GET", "200"}] != 5 || st.duration[11] != 1 {
		t.Fatalf("route %v: %+v", r, st)
	}
	if s.connErrs[[2]string{"shop", "web"}] != 4 {
		t.Errorf("connect errors = %v", s.connErrs)
	}
}
