package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// A small line-chart writer: enough for a CDF and a scaling curve, with
// no dependency beyond fmt.

type series struct {
	Name   string
	Color  string
	X, Y   []float64
	Points bool // draw markers
}

type chart struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool
	Series                []series
	// HLines/VLines are dashed reference lines (targets), by label.
	HLines map[string]float64
	VLines map[string]float64
}

const (
	svgW, svgH             = 720, 420
	padL, padR, padT, padB = 70, 20, 40, 60
)

func (c chart) SVG() string {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
			ymin, ymax = math.Min(ymin, s.Y[i]), math.Max(ymax, s.Y[i])
		}
	}
	for _, v := range c.HLines {
		ymax = math.Max(ymax, v)
	}
	for _, v := range c.VLines {
		xmax = math.Max(xmax, v)
	}
	if !c.LogY {
		ymin = math.Min(ymin, 0)
	}
	if !c.LogX {
		xmin = math.Min(xmin, 0)
	}
	tx := func(v float64) float64 { return v }
	ty := tx
	if c.LogX {
		tx = math.Log10
	}
	if c.LogY {
		ty = math.Log10
	}
	x0, x1 := tx(xmin), tx(xmax)
	y0, y1 := ty(ymin), ty(ymax*1.05)
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y1 = y0 + 1
	}
	px := func(v float64) float64 { return padL + (tx(v)-x0)/(x1-x0)*(svgW-padL-padR) }
	py := func(v float64) float64 { return svgH - padB - (ty(v)-y0)/(y1-y0)*(svgH-padT-padB) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(c.Title))
	// axes and ticks
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", padL, svgH-padB, svgW-padR, svgH-padB)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", padL, padT, padL, svgH-padB)
	for _, t := range ticks(xmin, xmax, c.LogX) {
		x := px(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, padT, x, svgH-padB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, svgH-padB+16, num(t))
	}
	for _, t := range ticks(ymin, ymax, c.LogY) {
		y := py(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y, svgW-padR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y+4, num(t))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", (padL+svgW-padR)/2, svgH-18, esc(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`+"\n", (padT+svgH-padB)/2, (padT+svgH-padB)/2, esc(c.YLabel))
	for _, label := range slices.Sorted(maps.Keys(c.HLines)) {
		y := py(c.HLines[label])
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c00" stroke-dasharray="6 4"/>`+"\n", padL, y, svgW-padR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#c00">%s</text>`+"\n", svgW-padR-4, y-4, esc(label))
	}
	for _, label := range slices.Sorted(maps.Keys(c.VLines)) {
		x := px(c.VLines[label])
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c00" stroke-dasharray="6 4"/>`+"\n", x, padT, x, svgH-padB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#c00">%s</text>`+"\n", x+4, padT+12, esc(label))
	}
	for i, s := range c.Series {
		var pts []string
		for k := range s.X {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[k]), py(s.Y[k])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.Color, strings.Join(pts, " "))
		if s.Points {
			for k := range s.X {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", px(s.X[k]), py(s.Y[k]), s.Color)
			}
		}
		ly := padT + 14 + 18*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", padL+14, ly-4, padL+34, ly-4, s.Color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", padL+40, ly, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e7:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

// ticks returns about six round tick values between lo and hi (decades on
// a log axis).
func ticks(lo, hi float64, log bool) []float64 {
	var out []float64
	if log {
		for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if v >= lo*0.999 && v <= hi*1.001 {
					out = append(out, v)
				}
			}
		}
		return out
	}
	span := hi - lo
	if span <= 0 {
		return []float64{lo}
	}
	step := math.Pow(10, math.Floor(math.Log10(span/6)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= 7 {
			step *= m
			break
		}
	}
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}
