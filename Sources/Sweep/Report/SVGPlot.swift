import Foundation

/// A small scatter/line plot rendered as inline SVG: no scripts, no fonts to fetch. Text sizes are
/// in the SVG's own units: a page shows each plot near its natural width (see `HTMLReport`), so
/// 12 units stay about 12 px on screen.
struct SVGPlot {
    struct Point {
        var x: Double
        var y: Double
        var label: String? = nil
        var marked = false
        var tooltip: String? = nil
    }

    struct Series {
        var name: String
        var points: [Point]
        var connect: Bool
        /// Index into the palette, so one model keeps its colour across plots.
        var colorIndex: Int
        /// False for dense curves (hundreds of points): the line alone.
        var dots = true
        var dashed = false
        /// A colour outside the palette (for a series that is no model).
        var color: String? = nil
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var logY: Bool
    var series: [Series]
    var logX = false
    /// Fixed axis ranges in data units (so that panels side by side share their scales); by
    /// default each axis spans its own data.
    var xRange: (Double, Double)? = nil
    var yRange: (Double, Double)? = nil
    var markedLegend: String? = nil
    /// A dashed grey line under the series (a reference curve), with its legend entry.
    var guide: (name: String, points: [(x: Double, y: Double)])? = nil
    /// Shown instead of the axes when there is nothing to draw.
    var emptyMessage = "no data yet"

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]

    /// Smaller plots (one per task) are drawn on a smaller canvas so their text stays legible.
    var width = 640.0
    var plotHeight = 400.0
    private let left = 64.0, right = 16.0, top = 36.0, bottom = 56.0
    private let legendRow = 20.0

    private enum LegendMark { case dot(String), ring, dash }
    private var legendEntries: [(name: String, mark: LegendMark)] {
        series.map { ($0.name, .dot($0.color ?? Self.color($0.colorIndex))) } + (markedLegend.map { [($0, .ring)] } ?? [])
            + (guide.map { [($0.name, .dash)] } ?? [])
    }
    /// The legend sits under the plot, in as many columns as fit, so it never covers data.
    private var legendColumns: Int { max(1, Int((width - left) / 230)) }
    private var height: Double {
        plotHeight + Double((legendEntries.count + legendColumns - 1) / legendColumns) * legendRow + 6
    }

    static func color(_ index: Int) -> String { palette[index % palette.count] }

    func render() -> String {
        let all = series.flatMap(\.points).filter(drawable)
        guard !all.isEmpty else {
            // Nothing to draw: a short box with the message, not a tall blank canvas.
            return ##"<svg class="plot" viewBox="0 0 \##(Int(width)) 90" role="img" aria-label="\##(escape(title))" xmlns="http://www.w3.org/2000/svg">"##
                + ##"<text x="\##(width / 2)" y="20" text-anchor="middle" class="title">\##(escape(title))</text>"##
                + ##"<text x="\##(width / 2)" y="60" text-anchor="middle" class="empty">\##(escape(emptyMessage))</text></svg>"##
        }
        var svg = ##"<svg class="plot" viewBox="0 0 \##(Int(width)) \##(Int(height))" role="img" aria-label="\##(escape(title))" xmlns="http://www.w3.org/2000/svg">"##
        svg += ##"<text x="\##(width / 2)" y="20" text-anchor="middle" class="title">\##(escape(title))</text>"##
        let xs = all.map(\.x), ys = all.map(\.y)
        let (x0, x1) = axisRange(xRange ?? (xs.min()!, xs.max()!), log: logX)
        let (y0, y1) = axisRange(yRange ?? (ys.min()!, ys.max()!), log: logY)
        let plotW = width - left - right, plotH = plotHeight - top - bottom
        func px(_ x: Double) -> Double {
            let v = logX ? log10(x) : x
            return left + (v - x0) / (x1 - x0) * plotW
        }
        func py(_ y: Double) -> Double {
            let v = logY ? log10(y) : y
            return top + plotH - (v - y0) / (y1 - y0) * plotH
        }
        // axes, grid and ticks
        svg += ##"<rect x="\##(left)" y="\##(top)" width="\##(plotW)" height="\##(plotH)" class="frame"/>"##
        for t in logX ? thinned(logTicks(x0, x1)) : niceTicks(x0, x1, count: max(3, Int(plotW / 70))) {
            let x = px(t)
            svg += ##"<line x1="\##(f(x))" y1="\##(top)" x2="\##(f(x))" y2="\##(top + plotH)" class="gridline"/>"##
            svg += ##"<text x="\##(f(x))" y="\##(top + plotH + 16)" text-anchor="middle" class="tick">\##(tickLabel(t))</text>"##
        }
        let yTicks: [Double] = logY ? logTicks(y0, y1) : niceTicks(y0, y1, count: max(3, Int(plotH / 45)))
        for t in yTicks {
            let y = py(t)
            svg += ##"<line x1="\##(left)" y1="\##(f(y))" x2="\##(left + plotW)" y2="\##(f(y))" class="gridline"/>"##
            svg += ##"<text x="\##(left - 6)" y="\##(f(y + 4))" text-anchor="end" class="tick">\##(tickLabel(t))</text>"##
        }
        svg += ##"<text x="\##(left + plotW / 2)" y="\##(plotHeight - 14)" text-anchor="middle" class="axis">\##(escape(xLabel))</text>"##
        svg += ##"<text transform="translate(16 \##(top + plotH / 2)) rotate(-90)" text-anchor="middle" class="axis">\##(escape(yLabel))</text>"##
        if let guide, guide.points.count > 1 {
            let path = guide.points.sorted { $0.x < $1.x }.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg += ##"<polyline points="\##(path)" fill="none" stroke="#888" stroke-width="1.5" stroke-dasharray="6 4"/>"##
        }
        // series
        for s in series {
            let color = s.color ?? Self.color(s.colorIndex)
            let pts = s.points.filter(drawable)
            if s.connect, pts.count > 1 {
                let path = pts.sorted { $0.x < $1.x }.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                let dash = s.dashed ? ##" stroke-dasharray="5 3""## : ""
                svg += ##"<polyline points="\##(path)" fill="none" stroke="\##(color)" stroke-width="1.5"\##(dash)/>"##
            }
            for p in pts where s.dots {
                let (cx, cy) = (f(px(p.x)), f(py(p.y)))
                if p.marked {
                    svg += ##"<circle cx="\##(cx)" cy="\##(cy)" r="8" fill="none" stroke="#111" stroke-width="1.5"/>"##
                }
                svg += ##"<circle cx="\##(cx)" cy="\##(cy)" r="4" fill="\##(color)">"##
                if let tip = p.tooltip { svg += "<title>\(escape(tip))</title>" }
                svg += "</circle>"
                if let label = p.label {
                    // Near the right edge a label goes left of its point, inside the plot.
                    let flip = px(p.x) > width - right - 8 * Double(label.count) - 10
                    let lx = flip ? px(p.x) - 7 : px(p.x) + 7
                    svg += ##"<text x="\##(f(lx))" y="\##(f(py(p.y) - 7))" class="label" fill="\##(color)"\##(flip ? ##" text-anchor="end""## : "")>\##(escape(label))</text>"##
                }
            }
        }
        // legend, under the plot
        let columnWidth = (width - left) / Double(legendColumns)
        for (i, entry) in legendEntries.enumerated() {
            let lx = left + Double(i % legendColumns) * columnWidth
            let ly = plotHeight + 4 + Double(i / legendColumns) * legendRow
            switch entry.mark {
            case .dot(let color):
                svg += ##"<circle cx="\##(f(lx))" cy="\##(f(ly - 4))" r="4" fill="\##(color)"/>"##
            case .ring:
                svg += ##"<circle cx="\##(f(lx))" cy="\##(f(ly - 4))" r="6" fill="none" stroke="#111" stroke-width="1.5"/>"##
            case .dash:
                svg += ##"<line x1="\##(f(lx - 6))" y1="\##(f(ly - 4))" x2="\##(f(lx + 6))" y2="\##(f(ly - 4))" stroke="#888" stroke-width="1.5" stroke-dasharray="4 3"/>"##
            }
            svg += ##"<text x="\##(f(lx + 10))" y="\##(f(ly))" class="legend">\##(escape(entry.name))</text>"##
        }
        return svg + "</svg>"
    }

    private func drawable(_ p: Point) -> Bool {
        p.x.isFinite && p.y.isFinite && (!logY || p.y > 0) && (!logX || p.x > 0)
    }

    /// The drawn span of an axis: whole decades on a log axis, 8% padding on a linear one.
    private func axisRange(_ range: (Double, Double), log isLog: Bool) -> (Double, Double) {
        guard isLog else { return padded(range.0, range.1) }
        let lo = log10(max(range.0, 1e-300)), hi = log10(max(range.1, 1e-300))
        // A value on a decade is the axis' end (a density of 1); others get a margin to the next.
        func onDecade(_ v: Double) -> Bool { abs(v - v.rounded()) < 1e-9 }
        let from = onDecade(lo) ? lo.rounded() : floor(lo - 0.05), to = onDecade(hi) ? hi.rounded() : ceil(hi + 0.05)
        return to > from ? (from, to) : (from - 1, to + 1)
    }

    /// Every other decade when there are many, so labels never collide on a narrow axis.
    private func thinned(_ ticks: [Double]) -> [Double] {
        ticks.count <= 6 ? ticks : ticks.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
    }

    private func padded(_ lo: Double, _ hi: Double) -> (Double, Double) {
        if hi - lo < 1e-12 { return (lo - 0.5 * max(abs(lo), 1) * 0.1, hi + 0.5 * max(abs(hi), 1) * 0.1) }
        let pad = (hi - lo) * 0.08
        return (lo - pad, hi + pad)
    }

    private func niceTicks(_ lo: Double, _ hi: Double, count: Int) -> [Double] {
        let raw = (hi - lo) / Double(min(count, 8))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = ceil(lo / step) * step
        var ticks: [Double] = []
        while t <= hi + step * 1e-9 {
            ticks.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return ticks
    }

    /// Decades, with 2 and 5 between them when the range spans few decades.
    private func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        var ticks: [Double] = []
        let fine = hi - lo <= 2
        for e in Int(lo)...Int(hi) {
            for m in fine ? [1.0, 2, 5] : [1.0] {
                let v = m * pow(10, Double(e))
                if log10(v) >= lo - 1e-9 && log10(v) <= hi + 1e-9 { ticks.append(v) }
            }
        }
        return ticks
    }

    private func tickLabel(_ v: Double) -> String {
        if abs(v) >= 1000 || (abs(v) < 0.01 && v != 0) { return String(format: "%g", v) }
        return ReportFormat.number((v * 1e6).rounded() / 1e6)
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
}

func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
