import Foundation

/// A small scatter/line plot rendered as inline SVG: no scripts, no fonts to fetch.
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
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var logY: Bool
    var series: [Series]
    var markedLegend: String? = nil
    /// A dashed grey line under the series (a reference curve), with its legend entry.
    var guide: (name: String, points: [(x: Double, y: Double)])? = nil
    /// Shown instead of the axes when there is nothing to draw.
    var emptyMessage = "no data yet"

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]

    /// Smaller plots (one per task) are drawn on a smaller canvas so their text stays legible.
    var width = 640.0
    var plotHeight = 400.0
    private let left = 70.0, right = 20.0, top = 36.0, bottom = 56.0
    private let legendRow = 16.0

    private enum LegendMark { case dot(String), ring, dash }
    private var legendEntries: [(name: String, mark: LegendMark)] {
        series.map { ($0.name, .dot(Self.color($0.colorIndex))) } + (markedLegend.map { [($0, .ring)] } ?? [])
            + (guide.map { [($0.name, .dash)] } ?? [])
    }
    /// The legend sits under the plot, in as many columns as fit, so it never covers data.
    private var legendColumns: Int { max(1, Int((width - left) / 210)) }
    private var height: Double {
        plotHeight + Double((legendEntries.count + legendColumns - 1) / legendColumns) * legendRow + 6
    }

    static func color(_ index: Int) -> String { palette[index % palette.count] }

    func render() -> String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
        var svg = ##"<svg class="plot" viewBox="0 0 \##(Int(width)) \##(Int(height))" role="img" aria-label="\##(escape(title))" xmlns="http://www.w3.org/2000/svg">"##
        svg += ##"<text x="\##(width / 2)" y="20" text-anchor="middle" class="title">\##(escape(title))</text>"##
        guard !all.isEmpty else {
            svg += ##"<text x="\##(width / 2)" y="\##(height / 2)" text-anchor="middle" class="empty">\##(escape(emptyMessage))</text></svg>"##
            return svg
        }
        let xs = all.map(\.x), ys = all.map { logY ? log10($0.y) : $0.y }
        let (x0, x1) = padded(xs.min()!, xs.max()!)
        let (y0, y1) = logY ? (floor(ys.min()! - 0.05), ceil(ys.max()! + 0.05)) : padded(ys.min()!, ys.max()!)
        let plotW = width - left - right, plotH = plotHeight - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double {
            let v = logY ? log10(y) : y
            return top + plotH - (v - y0) / (y1 - y0) * plotH
        }
        // axes, grid and ticks
        svg += ##"<rect x="\##(left)" y="\##(top)" width="\##(plotW)" height="\##(plotH)" class="frame"/>"##
        for t in niceTicks(x0, x1) {
            let x = px(t)
            svg += ##"<line x1="\##(f(x))" y1="\##(top)" x2="\##(f(x))" y2="\##(top + plotH)" class="gridline"/>"##
            svg += ##"<text x="\##(f(x))" y="\##(top + plotH + 16)" text-anchor="middle" class="tick">\##(tickLabel(t))</text>"##
        }
        let yTicks: [Double] = logY ? logTicks(y0, y1) : niceTicks(y0, y1)
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
            let color = Self.color(s.colorIndex)
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
            if s.connect, pts.count > 1 {
                let path = pts.sorted { $0.x < $1.x }.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                svg += ##"<polyline points="\##(path)" fill="none" stroke="\##(color)" stroke-width="1.5"/>"##
            }
            for p in pts {
                let (cx, cy) = (f(px(p.x)), f(py(p.y)))
                if p.marked {
                    svg += ##"<circle cx="\##(cx)" cy="\##(cy)" r="8" fill="none" stroke="#111" stroke-width="1.5"/>"##
                }
                svg += ##"<circle cx="\##(cx)" cy="\##(cy)" r="4" fill="\##(color)">"##
                if let tip = p.tooltip { svg += "<title>\(escape(tip))</title>" }
                svg += "</circle>"
                if let label = p.label {
                    svg += ##"<text x="\##(f(px(p.x) + 7))" y="\##(f(py(p.y) - 7))" class="label" fill="\##(color)">\##(escape(label))</text>"##
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

    private func padded(_ lo: Double, _ hi: Double) -> (Double, Double) {
        if hi - lo < 1e-12 { return (lo - 0.5 * max(abs(lo), 1) * 0.1, hi + 0.5 * max(abs(hi), 1) * 0.1) }
        let pad = (hi - lo) * 0.08
        return (lo - pad, hi + pad)
    }

    private func niceTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 6
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
