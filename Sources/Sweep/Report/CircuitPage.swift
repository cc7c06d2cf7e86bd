import Foundation

/// circuits/MODEL__TASK.html: one circuit to read, self-contained (inline CSS, SVG and script;
/// nothing fetched, so it opens from file://). The page's script draws the circuit's layered graph
/// from the circuit document and its analysis, both embedded as JSON; the loss-against-k curve
/// and the task's pairs are drawn here.
struct CircuitPage {
    let model: ReportModel
    let circuit: ReportCircuit
    /// The `CircuitAnalysis` JSON; without it the graph shows but nodes carry no analysis.
    let analysis: Data?
    let sweepName: String

    private struct Trace: Decodable {
        var k: Int
        var loss: Double
    }

    /// The fields of the circuit document the page itself reads; the script reads the rest.
    private struct Summary: Decodable {
        var target: Double?
        var reached_loss: Double?
        var full_loss: Double?
        var node_count: Int?
        var edge_count: Int?
        var total_nodes: Int?
        var lambda: Double?
        var bisection: [Trace]?
        /// Written by newer pruners: reachable, unreachable or collapsed, and the task loss with
        /// the circuit's nodes removed from the full model.
        var status: String?
        var necessity_loss: Double?
    }

    private struct AnalysisPairs: Decodable {
        struct Pair: Decodable {
            var prompt_a: [String]
            var prompt_b: [String]
            var answer_a: String
            var answer_b: String
        }
        var pairs: [Pair]
        var circuit_loss: Double
        var pairs_measured: Int
        var held_out_windows: Int
        var window_length: Int
        var seconds: Double
    }

    func render() throws -> String {
        let json = circuit.circuitJSON ?? Data("{}".utf8)
        let summary: Summary
        do { summary = try JSONDecoder().decode(Summary.self, from: json) } catch {
            throw SweepError("circuit \(model.identifier)/\(circuit.task): its document is not a circuit: \(error)")
        }
        let pairs = analysis.flatMap { try? JSONDecoder().decode(AnalysisPairs.self, from: $0) }
        let title = "\(circuit.task) · \(model.label)"
        var body = "<p class=\"meta\"><a href=\"../index.html\">\(escape(sweepName)) report</a> · <a href=\"\(escape(ReportDetails.circuitKey(modelID: model.identifier, task: circuit.task))).json\">circuit JSON</a></p>\n"
        body += "<h1>\(escape(circuit.task))</h1>\n<p class=\"meta\">\(escape(model.label)), embedding density \(ReportFormat.number(model.embedDensity)), AbsTopK fraction \(ReportFormat.number(model.afrac)), seed \(model.seed)</p>\n"
        let target = summary.target ?? circuit.target
        body += "<p>The circuit at target task loss \(ReportFormat.number(target)): <strong>\(summary.node_count.map(String.init) ?? "?") of \(summary.total_nodes.map(String.init) ?? "?") nodes, \(summary.edge_count.map(String.init) ?? "?") edges</strong>, task loss \(ReportFormat.loss(summary.reached_loss)) (the full model: \(ReportFormat.loss(summary.full_loss))\(summary.lambda.map { ", λ \(ReportFormat.number($0))" } ?? "")).</p>\n"
        if let necessity = summary.necessity_loss {
            body += "<p>Necessity: the full model with this circuit's nodes ablated has task loss \(ReportFormat.loss(necessity)).</p>\n"
        }
        if let status = summary.status, status != "reachable" { body += "<p class=\"running\">Status: \(escape(status)).</p>\n" }
        body += graphSection(hasAnalysis: analysis != nil)
        body += "<div class=\"below\">\n" + curveSection(summary, target: target) + pairsSection(pairs) + "</div>\n"
        if let pairs {
            body += "<p class=\"meta\">Node analysis: ablation effects and A/B means on the first \(pairs.pairs_measured) test pairs (the circuit's loss there: \(ReportFormat.loss(pairs.circuit_loss))); snippets from \(pairs.held_out_windows) held-out windows of \(pairs.window_length) tokens; computed in \(String(format: "%.1f", pairs.seconds)) s when the circuit was pruned.</p>\n"
        }
        body += "<script type=\"application/json\" id=\"circuit-data\">\(Self.scriptSafe(json))</script>\n"
        body += "<script type=\"application/json\" id=\"analysis-data\">\(Self.scriptSafe(analysis ?? Data("null".utf8)))</script>\n"
        body += "<script>\n\(Self.script)\n</script>\n"
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>
        \(HTMLReport.styleSheet)
        \(Self.styleSheet)
        </style></head><body>
        \(body)</body></html>

        """
    }

    /// JSON inside a script element: `</` would end the element.
    static func scriptSafe(_ json: Data) -> String {
        String(decoding: json, as: UTF8.self).replacingOccurrences(of: "</", with: "<\\/")
    }

    private func graphSection(hasAnalysis: Bool) -> String {
        var s = "<section><h2>The circuit</h2>\n"
        s += "<p class=\"legend-text\">Bottom to top, per layer: attention input → q, k, v (per head) → attention output, then MLP input → neurons → MLP output; last the final residual → the candidate tokens. "
        s += "Edge width follows |weight| relative to the largest of its matrix; <span class=\"pos\">blue is positive</span>, <span class=\"neg\">red negative</span>. Grey dotted lines join a residual channel written by one node and read by a later one. "
        s += hasAnalysis ? "A node's shade is its ablation effect: how much the task loss rises when only that node is removed. Hover or click a node.</p>\n"
                         : "This circuit has no analysis (it was pruned before per-node analyses were recorded). Hover or click a node.</p>\n"
        s += "<div class=\"viewer\"><div class=\"graph-scroll\" id=\"graph\"><noscript>The graph needs JavaScript.</noscript></div>\n"
        s += "<aside id=\"details\"><p>Click a node.</p></aside></div>\n</section>\n"
        return s
    }

    private func curveSection(_ summary: Summary, target: Double) -> String {
        var s = "<section><h2>Loss against k</h2>\n"
        guard let trace = summary.bisection, !trace.isEmpty else {
            return s + "<p>The document holds no bisection trace.</p></section>\n"
        }
        s += "<p>Task loss with only the k nodes of highest mask score kept, at every k the bisection tried; the dashed line is the target.</p>\n"
        let points = trace.map { SVGPlot.Point(x: Double(max($0.k, 1)), y: $0.loss, tooltip: "k = \($0.k): task loss \(ReportFormat.loss($0.loss))") }
        let ks = points.map(\.x)
        let plot = SVGPlot(title: "bisection over k", xLabel: "k (nodes kept, log scale)", yLabel: "task loss (nats)", logY: false,
                           series: [SVGPlot.Series(name: "task loss", points: points, connect: true, colorIndex: 0)],
                           logX: true, guide: (name: "target \(ReportFormat.number(target))",
                                               points: [(ks.min()!, target), (ks.max()!, target)]),
                           width: HTMLReport.panelWidth + 70, plotHeight: 300)
        return s + plot.render() + "</section>\n"
    }

    private func pairsSection(_ analysis: AnalysisPairs?) -> String {
        var s = "<section><h2>Pairs of the task</h2>\n"
        guard let analysis, !analysis.pairs.isEmpty else { return s + "<p>No pairs recorded with this circuit.</p></section>\n" }
        s += "<p>A few test pairs: the model must answer each prompt with its own answer (and not with the other's).</p>\n"
        for (i, p) in analysis.pairs.enumerated() {
            func prompt(_ tokens: [String], _ answer: String) -> String {
                "<pre class=\"pair\">\(escape(tokens.joined()))<mark>\(escape(answer))</mark></pre>"
            }
            s += "<div class=\"pairbox\"><span class=\"tag\">pair \(i + 1) · A</span>\(prompt(p.prompt_a, p.answer_a))<span class=\"tag\">B</span>\(prompt(p.prompt_b, p.answer_b))</div>\n"
        }
        return s + "</section>\n"
    }

    static let styleSheet = """
    .viewer { display: grid; grid-template-columns: minmax(0, 1fr) 360px; gap: 12px; align-items: start; }
    @media (max-width: 1000px) { .viewer { grid-template-columns: minmax(0, 1fr); } }
    .graph-scroll { overflow: auto; border: 1px solid #ddd; border-radius: 4px; max-height: 80vh; }
    #details { border: 1px solid #ddd; border-radius: 4px; padding: 8px 12px; font-size: 14px; position: sticky; top: 8px; max-height: 96vh; overflow-y: auto; }
    #details h3 { margin: 0.2em 0; font-size: 16px; } #details h4 { margin: 0.8em 0 0.2em; font-size: 14px; }
    #details table { font-size: 13px; width: 100%; } #details td { padding: 1px 4px; }
    .pos { color: #2166ac; font-weight: 600; } .neg { color: #b2182b; font-weight: 600; }
    .below { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 12px; }
    pre.pair, pre.snippet { white-space: pre-wrap; overflow-wrap: anywhere; font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; background: #f7f7f7; padding: 4px 6px; margin: 2px 0 8px; border-radius: 3px; }
    pre.pair mark { background: #ffe08a; } .tag { font-size: 12px; color: #555; } .pairbox { margin-bottom: 10px; }
    pre.snippet span.hit { outline: 2px solid #111; outline-offset: -1px; }
    svg.graph text { font: 12px system-ui, sans-serif; fill: #333; } svg.graph .rowlabel { font-size: 13px; font-weight: 600; }
    svg.graph .node { stroke: #333; stroke-width: 1; cursor: pointer; } svg.graph .node.selected { stroke: #f0a000; stroke-width: 3; }
    svg.graph .dim { opacity: 0.08; } svg.graph .headlabel { font-size: 11px; fill: #666; }
    .bar-a { fill: #4d9221; } .bar-b { fill: #c51b7d; } a.node-link { cursor: pointer; }
    """

    /// Builds the graph and the node panel from the embedded JSON. Layout: one row per node
    /// location, bottom to top in the order the model computes them; q, k and v share a row, their
    /// nodes grouped by head.
    static let script = #"""
    (function () {
      "use strict";
      const circuit = JSON.parse(document.getElementById("circuit-data").textContent);
      const analysis = JSON.parse(document.getElementById("analysis-data").textContent);
      const SVG = "http://www.w3.org/2000/svg";
      if (!Array.isArray(circuit.locations)) circuit.locations = [];
      if (!Array.isArray(circuit.edges)) circuit.edges = [];
      const dHead = analysis ? analysis.d_head : null;
      const locations = {};
      for (const loc of circuit.locations) locations[loc.name] = loc;
      const nLayer = analysis ? analysis.n_layer : Object.keys(locations).filter(n => n.endsWith(".attn_in")).length;

      // Token text for the logit nodes: the document's own strings when it has them, else the analysis pairs' answers.
      const tokenText = {};
      if (analysis) for (const p of analysis.pairs) { tokenText[p.answer_token_a] = p.answer_a; tokenText[p.answer_token_b] = p.answer_b; }
      const docStrings = circuit.candidate_strings || circuit.candidate_texts || circuit.candidate_token_strings;
      if (Array.isArray(docStrings)) (circuit.candidate_tokens || []).forEach((t, i) => { if (typeof docStrings[i] === "string") tokenText[t] = docStrings[i]; });
      const show = s => JSON.stringify(s);

      const perNode = {};
      if (analysis) for (const n of analysis.nodes) perNode[n.location + ":" + n.index] = n;
      // The head of a q/k/v channel: from d_head, or from the document's own `head` fields.
      function headOf(loc, index) {
        if (dHead) return Math.floor(index / dHead);
        const kept = ((locations[loc] || {}).kept || []).find(k => k.index === index);
        return kept && Number.isInteger(kept.head) ? kept.head : null;
      }
      function nodeName(id) {
        const [loc, idx] = id.split(":");
        const index = Number(idx);
        if (loc === "logits") return "logit " + (index in tokenText ? show(tokenText[index]) : "token " + index);
        const kind = loc.split(".").pop();
        const head = (kind === "q" || kind === "k" || kind === "v") ? headOf(loc, index) : null;
        if (head !== null) return loc + " head " + head + (dHead ? " · " + (index % dHead) : " channel " + index);
        return loc + " " + index;
      }

      // Rows, bottom to top.
      const rows = [];
      for (let l = 0; l < nLayer; l++) {
        rows.push({ label: l + ".attn_in", groups: [l + ".attn_in"] });
        rows.push({ label: l + ".q k v", groups: [l + ".q", l + ".k", l + ".v"] });
        rows.push({ label: l + ".attn_out", groups: [l + ".attn_out"] });
        rows.push({ label: l + ".mlp_in", groups: [l + ".mlp_in"] });
        rows.push({ label: l + ".neurons", groups: [l + ".mlp_neuron"] });
        rows.push({ label: l + ".mlp_out", groups: [l + ".mlp_out"] });
      }
      rows.push({ label: "final_resid", groups: ["final_resid"] });
      rows.push({ label: "candidates", groups: ["logits"] });

      const logitTokens = [...new Set((circuit.edges || []).filter(g => g.target === "logits").flatMap(g => g.edges.map(e => e.to)).concat(circuit.candidate_tokens || []))].sort((a, b) => a - b);
      function keptOf(group) {
        if (group === "logits") return logitTokens.map(t => ({ index: t, mean: null }));
        return ((locations[group] || {}).kept || []).slice().sort((a, b) => a.index - b.index);
      }

      const nodeR = 6, spacing = 18, groupGap = 26, left = 120, rowH = 74, top = 34;
      // Candidate tokens are few and labelled: they get room for their text.
      const rowSpacing = row => row.groups[0] === "logits" ? 64 : spacing;
      const counts = rows.map(r => (r.groups.reduce((s, g) => s + keptOf(g).length, 0) + (r.groups.length - 1)) * rowSpacing(r) / spacing);
      const maxCount = Math.max(1, ...counts);
      const host = document.getElementById("graph");
      const width = Math.max(host.clientWidth - 4 || 600, left + maxCount * spacing + groupGap * 3 + 40);
      // Rows without nodes stay thin, so a circuit confined to a few locations fits on screen.
      const heights = rows.map((row, r) => counts[r] > row.groups.length - 1 ? rowH : 30);
      const rowY = [];
      { let y = top; for (let r = rows.length - 1; r >= 0; r--) { rowY[r] = y + heights[r] / 2; y += heights[r]; } }
      const height = top + heights.reduce((a, b) => a + b, 0) + 10;
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("class", "graph");
      svg.setAttribute("width", width); svg.setAttribute("height", height);
      svg.setAttribute("viewBox", "0 0 " + width + " " + height);
      const edgeLayer = document.createElementNS(SVG, "g"), nodeLayer = document.createElementNS(SVG, "g");
      svg.appendChild(edgeLayer); svg.appendChild(nodeLayer);
      function el(name, attrs, parent, text) {
        const e = document.createElementNS(SVG, name);
        for (const k in attrs) e.setAttribute(k, attrs[k]);
        if (text !== undefined) e.textContent = text;
        (parent || svg).appendChild(e);
        return e;
      }

      // Node shade: ablation effect relative to the largest in the circuit.
      const base = analysis ? analysis.circuit_loss : null;
      const effects = analysis ? analysis.nodes.map(n => n.ablated_loss - base) : [];
      const maxEffect = Math.max(1e-6, ...effects);
      function shade(id) {
        const n = perNode[id];
        if (!n) return "#ddd";
        const t = Math.max(0, Math.min(1, (n.ablated_loss - base) / maxEffect));
        const c = (a, b) => Math.round(a + (b - a) * t);
        return "rgb(" + c(240, 8) + "," + c(244, 48) + "," + c(250, 107) + ")";
      }

      const pos = {}, nodes = [];
      rows.forEach((row, r) => {
        const y = rowY[r];
        el("text", { x: 8, y: y + 4, class: "rowlabel" }, svg, row.label);
        el("line", { x1: left - 10, y1: y, x2: width - 10, y2: y, stroke: "#f0f0f0" }, edgeLayer);
        const total = counts[r];
        let x = left + Math.max(0, (width - left - 20 - total * spacing) / 2) + rowSpacing(row) / 2;
        row.groups.forEach((group, gi) => {
          if (gi > 0) x += groupGap - spacing;
          const kept = keptOf(group);
          const kind = group.split(".").pop();
          if (row.groups.length > 1 && total > row.groups.length - 1) {
            el("text", { x: x - 4, y: y - 14, class: "headlabel" }, svg, kind + (kept.length ? "" : " (none)"));
            if (!kept.length) x += 40;
          }
          let lastHead = null;
          kept.forEach(k => {
            const id = group + ":" + k.index;
            const head = (kind === "q" || kind === "k" || kind === "v") ? headOf(group, k.index) : null;
            if (head !== null && head !== lastHead) {
              el("text", { x: x - 4, y: y + 22, class: "headlabel" }, svg, "h" + head);
              lastHead = head;
            }
            pos[id] = { x: x, y: y };
            nodes.push({ id: id, mean: k.mean });
            x += rowSpacing(row);
          });
          if (gi === row.groups.length - 1 && total === row.groups.length - 1) el("text", { x: left, y: y + 4, class: "headlabel" }, svg, "no nodes kept");
        });
      });

      // Edges, per matrix: width and opacity by |weight| relative to the matrix's largest.
      const edges = [];
      for (const g of circuit.edges || []) {
        const maxW = Math.max(1e-12, ...g.edges.map(e => Math.abs(e.weight)));
        for (const e of g.edges) {
          const from = g.source + ":" + e.from, to = g.target + ":" + e.to;
          if (!pos[from] || !pos[to]) continue;
          edges.push({ from: from, to: to, weight: e.weight, rel: Math.abs(e.weight) / maxW, matrix: g.matrix });
        }
      }
      // The residual stream: a channel written by attn_out or mlp_out is read by every later attn_in, mlp_in or final_resid node of that channel.
      const order = rows.map(r => r.groups).flat();
      const rank = {}; order.forEach((g, i) => rank[g] = i);
      const writers = order.filter(g => g.endsWith(".attn_out") || g.endsWith(".mlp_out"));
      const readers = order.filter(g => g.endsWith(".attn_in") || g.endsWith(".mlp_in") || g === "final_resid");
      const residual = [];
      for (const w of writers) for (const k of keptOf(w)) for (const rd of readers) {
        if (rank[rd] > rank[w] && pos[rd + ":" + k.index]) residual.push({ from: w + ":" + k.index, to: rd + ":" + k.index });
      }
      const edgeEls = [];
      for (const e of residual) {
        const a = pos[e.from], b = pos[e.to];
        const line = el("path", { d: "M" + a.x + " " + a.y + " C" + (a.x + 30) + " " + (a.y - 30) + " " + (b.x + 30) + " " + (b.y + 30) + " " + b.x + " " + b.y,
          fill: "none", stroke: "#aaa", "stroke-width": 1, "stroke-dasharray": "2 3", "data-residual": "1" }, edgeLayer);
        edgeEls.push({ el: line, from: e.from, to: e.to });
      }
      for (const e of edges) {
        const a = pos[e.from], b = pos[e.to];
        const line = el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, stroke: e.weight >= 0 ? "#2166ac" : "#b2182b",
          "stroke-width": (0.6 + 3.4 * e.rel).toFixed(2), "stroke-opacity": (0.25 + 0.65 * e.rel).toFixed(2), "data-edge": "1" }, edgeLayer);
        edgeEls.push({ el: line, from: e.from, to: e.to });
      }
      const nodeEls = {};
      for (const n of nodes) {
        const p = pos[n.id];
        const c = el("circle", { cx: p.x, cy: p.y, r: nodeR, fill: n.id.startsWith("logits:") ? "#ffe08a" : shade(n.id), class: "node", "data-node": n.id, tabindex: 0 }, nodeLayer);
        el("title", {}, c, nodeName(n.id));
        nodeEls[n.id] = c;
      }
      for (const t of logitTokens) {
        const p = pos["logits:" + t];
        if (p) el("text", { x: p.x, y: p.y - 11, "text-anchor": "middle" }, svg, t in tokenText ? show(tokenText[t]) : String(t));
      }
      host.appendChild(svg);
      host.dataset.nodes = nodes.length;
      host.dataset.edges = edges.length;

      function focus(id) {
        if (!id) { for (const e of edgeEls) e.el.classList.remove("dim"); for (const k in nodeEls) nodeEls[k].classList.remove("dim"); return; }
        const near = new Set([id]);
        for (const e of edgeEls) {
          const on = e.from === id || e.to === id;
          e.el.classList.toggle("dim", !on);
          if (on) { near.add(e.from); near.add(e.to); }
        }
        for (const k in nodeEls) nodeEls[k].classList.toggle("dim", !near.has(k));
      }
      let selected = null;
      function fmt(x, digits) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits === undefined ? 4 : digits); }
      function esc(s) { return String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]); }
      function edgeTable(list, other, title) {
        if (!list.length) return "<h4>" + title + "</h4><p>none</p>";
        list.sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight));
        let h = "<h4>" + title + " (" + list.length + ")</h4><table>";
        for (const e of list.slice(0, 12)) {
          h += "<tr><td><a class=\"node-link\" data-go=\"" + esc(e[other]) + "\">" + esc(nodeName(e[other])) + "</a></td><td class=\"num " + (e.weight >= 0 ? "pos" : "neg") + "\">" + fmt(e.weight, 3) + "</td></tr>";
        }
        if (list.length > 12) h += "<tr><td colspan=\"2\">and " + (list.length - 12) + " more</td></tr>";
        return h + "</table>";
      }
      function snippetsHTML(list, scale) {
        return list.map(s => {
          let h = "<pre class=\"snippet\">";
          s.tokens.forEach((t, i) => {
            const v = s.activations[i], a = Math.min(1, Math.abs(v) / scale);
            const bg = v >= 0 ? "rgba(33,102,172," + (0.55 * a).toFixed(2) + ")" : "rgba(178,24,43," + (0.55 * a).toFixed(2) + ")";
            h += "<span style=\"background:" + bg + "\"" + (i === s.position ? " class=\"hit\"" : "") + " title=\"" + fmt(v, 3) + "\">" + esc(t) + "</span>";
          });
          return h + "</pre><div class=\"tag\">value " + fmt(s.value, 3) + "</div>";
        }).join("");
      }
      function abBars(a, b) {
        const m = Math.max(1e-9, Math.abs(a), Math.abs(b)), w = 115, mid = 215;
        const bar = (v, y, cls, label) => {
          const len = Math.abs(v) / m * w, x = v >= 0 ? mid : mid - len;
          return "<rect x=\"" + x.toFixed(1) + "\" y=\"" + y + "\" width=\"" + Math.max(1, len).toFixed(1) + "\" height=\"14\" class=\"" + cls + "\"/><text x=\"4\" y=\"" + (y + 12) + "\">" + label + " " + fmt(v, 3) + "</text>";
        };
        return "<svg class=\"ab\" viewBox=\"0 0 340 44\" width=\"100%\" style=\"max-width:340px;font:12px system-ui\"><line x1=\"" + mid + "\" y1=\"0\" x2=\"" + mid + "\" y2=\"44\" stroke=\"#999\"/>" +
          bar(a, 4, "bar-a", "A") + bar(b, 24, "bar-b", "B") + "</svg>";
      }
      function select(id) {
        selected = id;
        for (const k in nodeEls) nodeEls[k].classList.toggle("selected", k === id);
        focus(id);
        const panel = document.getElementById("details");
        const node = nodes.find(n => n.id === id);
        const info = perNode[id];
        let h = "<h3>" + esc(nodeName(id)) + "</h3>";
        if (node && node.mean !== null && node.mean !== undefined) h += "<p>Mean over held-out text (its value when ablated): " + fmt(node.mean) + "</p>";
        if (info) {
          h += "<p>Ablation effect: task loss <strong>" + fmt(info.ablated_loss) + "</strong> without this node, against " + fmt(base) + " for the circuit (" + (info.ablated_loss - base >= 0 ? "+" : "") + fmt(info.ablated_loss - base) + ").</p>";
          h += "<h4>Mean at the answer position, in the circuit</h4>" + abBars(info.mean_a, info.mean_b);
          if (Math.abs(info.mean_a - info.mean_b) < 1e-6) h += "<p class=\"tag\">The same on A and B: before a layer's attention a node sees only its own position, so it differs only where an earlier layer carried the difference to the answer.</p>";
        } else if (!id.startsWith("logits:")) {
          h += "<p>No analysis for this node.</p>";
        }
        h += edgeTable(edges.filter(e => e.to === id), "from", "Incoming edges");
        h += edgeTable(edges.filter(e => e.from === id), "to", "Outgoing edges");
        const via = residual.filter(e => e.from === id || e.to === id).map(e => e.from === id ? e.to : e.from);
        if (via.length) h += "<h4>Same residual channel</h4><p>" + via.map(v => "<a class=\"node-link\" data-go=\"" + esc(v) + "\">" + esc(nodeName(v)) + "</a>").join(", ") + "</p>";
        if (info && (info.top.length || info.bottom.length)) {
          const scale = Math.max(1e-9, ...info.top.concat(info.bottom).flatMap(s => s.activations.map(Math.abs)));
          h += "<h4>Most active on held-out text (full model)</h4>" + snippetsHTML(info.top, scale);
          h += "<h4>Least active</h4>" + snippetsHTML(info.bottom, scale);
        }
        panel.innerHTML = h;
        panel.querySelectorAll("a[data-go]").forEach(a => a.addEventListener("click", () => select(a.dataset.go)));
        panel.dataset.selected = id;
      }
      for (const id in nodeEls) {
        const c = nodeEls[id];
        c.addEventListener("mouseenter", () => focus(id));
        c.addEventListener("mouseleave", () => focus(selected));
        c.addEventListener("click", () => select(id));
        c.addEventListener("keydown", ev => { if (ev.key === "Enter") select(id); });
      }
      // Start on the node whose removal hurts most, so the panel shows what a node offers.
      const start = analysis && analysis.nodes.length
        ? analysis.nodes.reduce((a, b) => (b.ablated_loss > a.ablated_loss ? b : a))
        : null;
      if (start && nodeEls[start.location + ":" + start.index]) select(start.location + ":" + start.index);
      else if (nodes.length) select(nodes[0].id);
    })();
    """#
}
