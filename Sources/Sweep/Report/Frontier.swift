import Foundation

/// A model's place on the capability/interpretability plane (SPEC 5).
public struct FrontierPoint: Sendable {
    public var model: ReportModel
    public var pretrainLoss: Double
    /// Geometric mean over the tasks whose circuit reached the target.
    public var geometricMeanEdges: Double
    public var tasksReached: Int
    public var tasksTotal: Int
    public var isPareto: Bool
}

/// One sparse model matched against the dense frontier at its pretraining loss.
public struct HeadlineRow: Sendable {
    public enum Match: String, Sendable {
        /// The dense frontier spans this loss: its edges are interpolated there.
        case interpolated
        /// The loss lies outside the dense frontier: the nearest dense point stands in.
        case nearest
    }
    public var sparse: FrontierPoint
    public var pretrainLoss: Double
    public var denseEdges: Double
    public var sparseEdges: Double
    public var match: Match
    public var ratio: Double { denseEdges / sparseEdges }
}

public struct Headline: Sendable {
    public var rows: [HeadlineRow]
    /// Geometric mean of the ratios of the interpolated rows (of all rows when none is interpolated);
    /// nil when the sweep has no dense or no sparse model with a circuit yet.
    public var ratio: Double?
    public var interpolated: Bool
    /// The tasks every model's geometric mean is taken over; empty when no task was reached by
    /// every model, and each model's own reached tasks stand in.
    public var tasks: [String] = []
}

public enum SweepFrontier {
    /// Geometric mean of edges at `target` over the tasks the model reached (of those in `tasks`
    /// when given); models without a pretraining loss or without any reached task are left out
    /// (they have no place on the plane).
    public static func points(_ data: ReportData, tasks: Set<String>? = nil) -> [FrontierPoint] {
        var points: [FrontierPoint] = []
        for model in data.models {
            guard let loss = model.pretrainLoss else { continue }
            let atTarget = data.headlineCircuits(of: model).filter { tasks?.contains($0.task) != false }
            let reached = atTarget.compactMap { c -> Int? in c.reachable ? c.edges : nil }
            guard !reached.isEmpty else { continue }
            points.append(FrontierPoint(model: model, pretrainLoss: loss,
                                        geometricMeanEdges: geometricMean(reached.map { Double(max($0, 1)) }),
                                        tasksReached: reached.count, tasksTotal: atTarget.count, isPareto: false))
        }
        let pareto = paretoIndices(points.map { ($0.pretrainLoss, $0.geometricMeanEdges) })
        for i in pareto { points[i].isPareto = true }
        return points
    }

    public static func geometricMean(_ xs: [Double]) -> Double {
        precondition(!xs.isEmpty)
        return exp(xs.reduce(0) { $0 + log($1) } / Double(xs.count))
    }

    /// Indices of the points that no other point beats on both axes (lower is better on both).
    public static func paretoIndices(_ xy: [(Double, Double)]) -> Set<Int> {
        var result = Set<Int>()
        for (i, p) in xy.enumerated() {
            let dominated = xy.enumerated().contains { j, q in
                j != i && q.0 <= p.0 && q.1 <= p.1 && (q.0 < p.0 || q.1 < p.1)
            }
            if !dominated { result.insert(i) }
        }
        return result
    }

    /// The tasks whose circuit at the headline target every model on the plane reached, in the
    /// order of `data.tasks`. A model's mean over its own reached tasks leaves out exactly the tasks
    /// it found hard, so models are compared over these.
    public static func commonTasks(_ data: ReportData) -> [String] {
        let reachedByModel = data.models.compactMap { model -> Set<String>? in
            guard model.pretrainLoss != nil else { return nil }
            let reached = Set(data.headlineCircuits(of: model).filter(\.reachable).map(\.task))
            return reached.isEmpty ? nil : reached
        }
        guard let first = reachedByModel.first else { return [] }
        let common = reachedByModel.dropFirst().reduce(first) { $0.intersection($1) }
        return data.tasks.filter { common.contains($0) }
    }

    /// The headline over the tasks every model reached (over each model's own reached tasks when
    /// there are none).
    public static func headline(_ data: ReportData) -> Headline {
        let tasks = commonTasks(data)
        var result = headline(tasks.isEmpty ? points(data) : points(data, tasks: Set(tasks)))
        result.tasks = tasks
        return result
    }

    /// Dense circuit edges over sparse circuit edges at matched pretraining loss. The dense
    /// frontier is the Pareto set of the dense models; log(edges) is interpolated linearly in loss
    /// between its points. Each Pareto-optimal sparse model is matched at its own loss.
    public static func headline(_ points: [FrontierPoint]) -> Headline {
        let dense = paretoSubset(points.filter { $0.model.isDense }).sorted { $0.pretrainLoss < $1.pretrainLoss }
        let sparse = paretoSubset(points.filter { !$0.model.isDense }).sorted { $0.pretrainLoss < $1.pretrainLoss }
        guard !dense.isEmpty, !sparse.isEmpty else { return Headline(rows: [], ratio: nil, interpolated: false) }
        var rows: [HeadlineRow] = []
        for s in sparse {
            let (edges, match) = denseEdges(at: s.pretrainLoss, along: dense)
            rows.append(HeadlineRow(sparse: s, pretrainLoss: s.pretrainLoss, denseEdges: edges,
                                    sparseEdges: s.geometricMeanEdges, match: match))
        }
        let interpolated = rows.filter { $0.match == .interpolated }
        let used = interpolated.isEmpty ? rows : interpolated
        return Headline(rows: rows, ratio: geometricMean(used.map(\.ratio)), interpolated: !interpolated.isEmpty)
    }

    static func paretoSubset(_ points: [FrontierPoint]) -> [FrontierPoint] {
        let keep = paretoIndices(points.map { ($0.pretrainLoss, $0.geometricMeanEdges) })
        return points.enumerated().filter { keep.contains($0.offset) }.map(\.element)
    }

    /// `dense` sorted by loss.
    static func denseEdges(at loss: Double, along dense: [FrontierPoint]) -> (Double, HeadlineRow.Match) {
        if dense.count >= 2, let first = dense.first, let last = dense.last,
           loss >= first.pretrainLoss, loss <= last.pretrainLoss {
            for (a, b) in zip(dense, dense.dropFirst()) where loss >= a.pretrainLoss && loss <= b.pretrainLoss {
                let span = b.pretrainLoss - a.pretrainLoss
                let t = span > 0 ? (loss - a.pretrainLoss) / span : 0
                let logEdges = log(a.geometricMeanEdges) * (1 - t) + log(b.geometricMeanEdges) * t
                return (exp(logEdges), .interpolated)
            }
        }
        let nearest = dense.min { abs($0.pretrainLoss - loss) < abs($1.pretrainLoss - loss) }!
        return (nearest.geometricMeanEdges, .nearest)
    }
}
