package main

import (
	"errors"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/hybi/websocket/bench/internal/load"
)

// panel is one bar chart of the picture: a figure for each server, fewer is better.
type panel struct {
	title string
	unit  string // printed after each value
	libs  []string
	vals  []float64
}

// idlePanel is the idle memory per connection, from the idle runs with the most
// connections, or false if there are none.
func idlePanel(results []load.Result) (panel, bool) {
	conns := 0
	for _, r := range results {
		if r.Scenario == "idle" && r.RSSKiBPerConn > 0 {
			conns = max(conns, r.Conns)
		}
	}
	if conns == 0 {
		return panel{}, false
	}
	runs := map[string][]float64{}
	order := map[string]int{}
	var libs []string
	for _, r := range results {
		if r.Scenario != "idle" || r.Conns != conns || r.RSSKiBPerConn <= 0 {
			continue
		}
		if _, ok := runs[r.Label]; !ok {
			order[r.Label] = len(order)
			libs = append(libs, r.Label)
		}
		runs[r.Label] = append(runs[r.Label], r.RSSKiBPerConn)
	}
	sortLibs(libs, order)
	p := panel{title: fmt.Sprintf("idle memory per connection (%d connections)", conns), unit: " KiB", libs: libs}
	for _, lib := range libs {
		p.vals = append(p.vals, median(runs[lib]))
	}
	return p, true
}

// chartPanels are the panels of the picture: instructions per operation of each counted
// figure, then idle memory per connection.
func chartPanels(results []load.Result) []panel {
	var panels []panel
	t := collectInstructions(results)
	for _, k := range t.keys {
		p := panel{title: "instructions " + k.per()}
		for _, lib := range t.libs {
			if v, ok := t.median(lib, k); ok {
				p.libs = append(p.libs, lib)
				p.vals = append(p.vals, v)
			}
		}
		panels = append(panels, p)
	}
	if p, ok := idlePanel(results); ok {
		panels = append(panels, p)
	}
	return panels
}

// Layout of the picture, in pixels: panels two a row.
const (
	chartCols   = 2
	panelWidth  = 470
	labelWidth  = 80
	barMax      = 300
	barHeight   = 16
	barStep     = 22
	panelTop    = 40 // title and the space under it
	panelBottom = 16
	chartMargin = 10
	chartHeader = 34
)

// barColor tells ours, its variants, the peers and the floor apart.
func barColor(lib string) string {
	switch {
	case lib == "ours":
		return "#2b6cb0"
	case strings.HasPrefix(lib, "ours-"):
		return "#63a4e0"
	case lib == "floor":
		return "#4a5568"
	}
	return "#b8c2cc"
}

// drawChart writes the side-by-side figures as an SVG picture: a panel of horizontal
// bars for each figure, each server a bar, fewer (shorter) better; caption, if not
// empty, is printed under the title.
func drawChart(w io.Writer, results []load.Result, caption string) error {
	panels := chartPanels(results)
	if len(panels) == 0 {
		return errors.New("nothing to draw: no counted runs and no idle runs")
	}
	// Rows of panels are as tall as their tallest panel.
	var rowHeights []int
	for i, p := range panels {
		h := panelTop + len(p.libs)*barStep + panelBottom
		if i%chartCols == 0 {
			rowHeights = append(rowHeights, h)
		} else {
			rowHeights[len(rowHeights)-1] = max(rowHeights[len(rowHeights)-1], h)
		}
	}
	width := 2*chartMargin + chartCols*panelWidth
	height := chartMargin + chartHeader
	for _, h := range rowHeights {
		height += h
	}
	height += chartMargin

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="15" font-weight="bold">%s</text>`+"\n", chartMargin, chartMargin+16,
		html.EscapeString("Server cost side by side: fewer is better"))
	sub := "user-space instructions counted by callgrind; resident memory per idle connection"
	if caption != "" {
		sub += "; " + caption
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", chartMargin, chartMargin+30, html.EscapeString(sub))
	y := chartMargin + chartHeader
	for i, p := range panels {
		row, col := i/chartCols, i%chartCols
		if col == 0 && row > 0 {
			y += rowHeights[row-1]
		}
		drawPanel(&b, p, chartMargin+col*panelWidth, y)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func drawPanel(b *strings.Builder, p panel, x, y int) {
	fmt.Fprintf(b, `<g transform="translate(%d,%d)">`+"\n", x, y)
	fmt.Fprintf(b, `<text x="0" y="22" font-size="13" font-weight="bold">%s</text>`+"\n", html.EscapeString(p.title))
	top := 0.0
	for _, v := range p.vals {
		top = max(top, v)
	}
	for i, lib := range p.libs {
		v := p.vals[i]
		by := panelTop + i*barStep
		bw := 0.0
		if top > 0 {
			bw = float64(barMax) * v / top
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelWidth-6, by+barHeight-4, html.EscapeString(lib))
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s%s</title></rect>`+"\n",
			labelWidth, by, bw, barHeight, barColor(lib), html.EscapeString(lib), valueLabel(v), html.EscapeString(p.unit))
		fmt.Fprintf(b, `<text x="%.1f" y="%d">%s%s</text>`+"\n", float64(labelWidth)+bw+4, by+barHeight-4, valueLabel(v), html.EscapeString(p.unit))
	}
	b.WriteString("</g>\n")
}

// valueLabel prints a figure as the tables do: large ones in whole thousands' commas,
// small ones with a decimal.
func valueLabel(v float64) string {
	if v >= 100 {
		return thousands(v)
	}
	return fmt.Sprintf("%.1f", v)
}
