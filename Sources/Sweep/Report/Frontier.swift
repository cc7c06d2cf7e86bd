import Foundation

/// A model's place on the capability/interpretability plane.
public struct FrontierPoint: Sendable {
    public var model: ReportModel
    public var pretrainLoss: Double
    /// Geometric mean over the tasks whose circuit reached the target (collapsed circuits do not).
    public var geometricMeanEdges: Double
    public var tasksReached: Int
    public var tasksTotal: Int
    public var isPareto: Bool
}

/// Where a sparse model's pretraining loss falls against the dense frontier of its seed.
public enum DenseMatch: Sendable {
    /// Between two points of the dense frontier: `lower` has the lower loss, `t` is the sparse
    /// loss's place between them (0 at `lower`, 1 at `upper`).
    case bracketed(lower: FrontierPoint, upper: FrontierPoint, t: Double)
    /// The sparse model's loss is below every dense model's: they are all worse.
    case everyDenseWorse(widest: Int)
    /// The sparse model's loss is above every loss of the dense frontier: those models are all
    /// better. `offFrontier` are the widths of dense models with a higher loss that are off the
    /// frontier (a frontier model beats them on both axes), so they bracket nothing.
    case everyDenseBetter(narrowest: Int, offFrontier: [Int])
    /// The seed has no dense baseline model with circuits.
    case noDense
}

/// One sparse model matched against the dense frontier of its seed at its pretraining loss.
public struct HeadlineRow: Sendable {
    public var sparse: FrontierPoint
    public var match: DenseMatch
    /// Dense frontier edges interpolated at the sparse loss; nil when the losses do not bracket it.
    public var denseEdges: Double?

    public var seed: Int { sparse.model.seed }
    public var pretrainLoss: Double { sparse.pretrainLoss }
    public var sparseEdges: Double { sparse.geometricMeanEdges }
    public var ratio: Double? { denseEdges.map { $0 / sparseEdges } }
    public var isBracketed: Bool { denseEdges != nil }

    /// Which way the losses miss and what would bracket them; nil when they bracket.
    public var miss: String? {
        switch match {
        case .bracketed: return nil
        case .everyDenseWorse(let widest):
            return "every dense model is worse (higher loss than \(ReportFormat.loss(pretrainLoss))): add a dense model wider than d_model \(widest) or train the dense models longer"
        case let .everyDenseBetter(narrowest, offFrontier):
            var text = offFrontier.isEmpty ? "every dense model is better" : "every dense model on the dense frontier is better"
            text += " (lower loss than \(ReportFormat.loss(pretrainLoss)))"
            if !offFrontier.isEmpty {
                let widths = offFrontier.map { "d_model \($0)" }.joined(separator: ", ")
                text += "; \(widths) \(offFrontier.count == 1 ? "has" : "have") a higher loss but larger circuits, off the frontier"
            }
            return text + ": add a dense model narrower than d_model \(narrowest) (or trained for fewer steps), or train the sparse model longer"
        case .noDense:
            return "seed \(seed) has no dense (density 1, afrac 1) model with circuits: add dense models of this seed"
        }
    }
}

/// The headline ratio of one seed: the geometric mean of its bracketed rows.
public struct SeedRatio: Sendable {
    public var seed: Int
    public var ratio: Double
    public var rows: Int
}

/// A two-sided interval for the headline ratio over seeds.
public struct RatioInterval: Sendable {
    public var low: Double
    public var high: Double
    public var level: Double
    public var seeds: Int
}

/// One task of a bracketed headline row: sparse circuit against the dense frontier interpolated
/// at the sparse loss, with every model's full-model task loss beside it.
public struct TaskComparison: Sendable {
    public var task: String
    public var seed: Int
    public var sparse: ReportModel
    public var lowerDense: ReportModel
    public var upperDense: ReportModel
    public var sparseCircuit: ReportCircuit?
    public var lowerCircuit: ReportCircuit?
    public var upperCircuit: ReportCircuit?
    /// Dense edges and nodes interpolated (log, linear in loss) at the sparse loss; nil unless all
    /// three circuits reached the target.
    public var denseEdges: Double?
    public var denseNodes: Double?

    public var edgeRatio: Double? {
        guard let d = denseEdges, let s = sparseCircuit?.countedEdges else { return nil }
        return d / Double(max(s, 1))
    }

    public var nodeRatio: Double? {
        guard let d = denseNodes, sparseCircuit?.reachable == true, let s = sparseCircuit?.nodes else { return nil }
        return d / Double(max(s, 1))
    }

    /// Dense edges per node over sparse edges per node: how much of the edge ratio is denser wiring
    /// rather than fewer nodes (edge ratio = node ratio × this).
    public var edgesPerNodeRatio: Double? {
        guard let e = edgeRatio, let n = nodeRatio else { return nil }
        return e / n
    }
}

public struct Headline: Sendable {
    public var rows: [HeadlineRow]
    /// One ratio per seed that has at least one bracketed row.
    public var seedRatios: [SeedRatio] = []
    /// Geometric mean of the seeds' ratios; nil when no sparse loss is bracketed by dense losses.
    public var ratio: Double?
    /// A 95% t-interval over seeds; nil with fewer than two seeds' ratios.
    public var interval: RatioInterval?
    /// The tasks every model's geometric mean is taken over; empty when no task was reached by
    /// every model, and each model's own reached tasks stand in.
    public var tasks: [String] = []
    /// Per task, for every bracketed row.
    public var perTask: [TaskComparison] = []
    /// Seeds without a ratio whose models still have shards to run.
    public var unfinishedSeeds: [Int] = []
    /// The seeds the sweep trains models for, finished or not.
    public var sweepSeeds: [Int] = []

    public var interpolated: Bool { ratio != nil }

    /// Why there is no interval, for the page and the terminal.
    public var intervalNote: String? {
        guard interval == nil, ratio != nil else { return nil }
        let bracketed = seedRatios.map { String($0.seed) }.joined(separator: ", ")
        if !unfinishedSeeds.isEmpty {
            return "seed \(unfinishedSeeds.map(String.init).joined(separator: ", ")) still running, "
                + "only seed \(bracketed) so far: no confidence interval yet"
        }
        return sweepSeeds.count < 2
            ? "one seed: no confidence interval (list two or more seeds in grid.seed for one)"
            : "only seed \(bracketed) is bracketed: no confidence interval"
    }
}

public enum SweepFrontier {
    /// Geometric mean of edges at `target` over the tasks the model reached (of those in `tasks`
    /// when given); the random-init controls, models without a pretraining loss and models without
    /// any reached task are left out (they have no place on the plane).
    public static func points(_ data: ReportData, tasks: Set<String>? = nil) -> [FrontierPoint] {
        var points: [FrontierPoint] = []
        for model in data.trainedModels {
            guard let loss = model.pretrainLoss else { continue }
            let atTarget = data.headlineCircuits(of: model).filter { tasks?.contains($0.task) != false }
            let reached = atTarget.compactMap(\.countedEdges)
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

    /// The headline's models: the dense baseline and the sparse models, every seed.
    static func headlineModels(_ data: ReportData) -> [ReportModel] {
        data.trainedModels.filter { $0.role == .dense || $0.role == .sparse }
    }

    /// The tasks whose circuit at the headline target every headline model on the plane reached, in
    /// the order of `data.tasks`. A model's mean over its own reached tasks leaves out exactly the
    /// tasks it found hard, so models are compared over these.
    public static func commonTasks(_ data: ReportData) -> [String] {
        commonTasks(data, among: headlineModels(data))
    }

    static func commonTasks(_ data: ReportData, among models: [ReportModel]) -> [String] {
        let reachedByModel = models.compactMap { model -> Set<String>? in
            guard model.pretrainLoss != nil else { return nil }
            let reached = Set(data.headlineCircuits(of: model).filter(\.reachable).map(\.task))
            return reached.isEmpty ? nil : reached
        }
        guard let first = reachedByModel.first else { return [] }
        let common = reachedByModel.dropFirst().reduce(first) { $0.intersection($1) }
        return data.tasks.filter { common.contains($0) }
    }

    /// Dense circuit edges over sparse circuit edges at matched pretraining loss, over the tasks
    /// every headline model reached (each model's own reached tasks when there are none). Seed by
    /// seed: the dense frontier of seed s is the Pareto set of its dense baseline models (density 1,
    /// afrac 1), and each Pareto-optimal sparse model of seed s is matched on it at its own loss,
    /// log(edges) interpolated linearly in loss, only where two dense losses bracket it. A seed's
    /// ratio is the geometric mean of its bracketed rows; the headline is the geometric mean over
    /// seeds, with a t-interval on the log ratios when two or more seeds have one.
    public static func headline(_ data: ReportData) -> Headline {
        let tasks = commonTasks(data)
        let points = tasks.isEmpty ? points(data) : points(data, tasks: Set(tasks))
        var result = Headline(rows: [])
        result.tasks = tasks
        let seeds = Set(points.filter { $0.model.role == .sparse }.map(\.model.seed)).sorted()
        for seed in seeds {
            let dense = paretoSubset(points.filter { $0.model.role == .dense && $0.model.seed == seed })
                .sorted { $0.pretrainLoss < $1.pretrainLoss }
            let sparse = paretoSubset(points.filter { $0.model.role == .sparse && $0.model.seed == seed })
                .sorted { $0.pretrainLoss < $1.pretrainLoss }
            let allDense = points.filter { $0.model.role == .dense && $0.model.seed == seed }
            var rows: [HeadlineRow] = []
            for s in sparse {
                let match = denseMatch(at: s.pretrainLoss, along: dense, all: allDense)
                var row = HeadlineRow(sparse: s, match: match)
                if case let .bracketed(lower, upper, t) = match {
                    row.denseEdges = exp(log(lower.geometricMeanEdges) * (1 - t) + log(upper.geometricMeanEdges) * t)
                    result.perTask += taskComparisons(data, sparse: s.model, lower: lower.model, upper: upper.model, t: t)
                }
                rows.append(row)
            }
            result.rows += rows
            let ratios = rows.compactMap(\.ratio)
            if !ratios.isEmpty {
                result.seedRatios.append(SeedRatio(seed: seed, ratio: geometricMean(ratios), rows: ratios.count))
            }
        }
        if !result.seedRatios.isEmpty {
            result.ratio = geometricMean(result.seedRatios.map(\.ratio))
            result.interval = tInterval(result.seedRatios.map(\.ratio))
        }
        let open = Set(data.shards.filter { $0.state == ShardState.pending.rawValue || $0.state == ShardState.leased.rawValue }.map(\.id))
        let running = data.trainedModels.filter { model in
            open.contains("train/\(model.identifier)") || open.contains { $0.hasPrefix("prune/\(model.identifier)/") }
        }
        result.unfinishedSeeds = Set(running.map(\.seed)).subtracting(result.seedRatios.map(\.seed)).sorted()
        result.sweepSeeds = Set(data.trainedModels.map(\.seed)).sorted()
        return result
    }

    static func paretoSubset(_ points: [FrontierPoint]) -> [FrontierPoint] {
        let keep = paretoIndices(points.map { ($0.pretrainLoss, $0.geometricMeanEdges) })
        return points.enumerated().filter { keep.contains($0.offset) }.map(\.element)
    }

    /// `dense` is the frontier sorted by loss, `all` every dense baseline point of the seed.
    static func denseMatch(at loss: Double, along dense: [FrontierPoint], all: [FrontierPoint]) -> DenseMatch {
        guard let first = dense.first, let last = dense.last else { return .noDense }
        if loss < first.pretrainLoss { return .everyDenseWorse(widest: all.map(\.model.dModel).max() ?? first.model.dModel) }
        if loss > last.pretrainLoss {
            let off = all.filter { $0.pretrainLoss > loss }.map(\.model.dModel).sorted()
            return .everyDenseBetter(narrowest: last.model.dModel, offFrontier: off)
        }
        if dense.count == 1 { return .bracketed(lower: first, upper: first, t: 0) }
        for (a, b) in zip(dense, dense.dropFirst()) where loss >= a.pretrainLoss && loss <= b.pretrainLoss {
            let span = b.pretrainLoss - a.pretrainLoss
            return .bracketed(lower: a, upper: b, t: span > 0 ? (loss - a.pretrainLoss) / span : 0)
        }
        preconditionFailure("a loss within the dense range lies between two of its points")
    }

    static func taskComparisons(_ data: ReportData, sparse: ReportModel, lower: ReportModel, upper: ReportModel,
                                t: Double) -> [TaskComparison] {
        data.tasks.map { task in
            var c = TaskComparison(task: task, seed: sparse.seed, sparse: sparse, lowerDense: lower, upperDense: upper,
                                   sparseCircuit: data.headlineCircuit(of: sparse, task: task),
                                   lowerCircuit: data.headlineCircuit(of: lower, task: task),
                                   upperCircuit: data.headlineCircuit(of: upper, task: task))
            if let a = c.lowerCircuit, let b = c.upperCircuit, a.reachable, b.reachable, c.sparseCircuit?.reachable == true {
                func interpolate(_ x: Int?, _ y: Int?) -> Double? {
                    guard let x, let y else { return nil }
                    return exp(log(Double(max(x, 1))) * (1 - t) + log(Double(max(y, 1))) * t)
                }
                c.denseEdges = interpolate(a.edges, b.edges)
                c.denseNodes = interpolate(a.nodes, b.nodes)
            }
            return c
        }
    }

    /// exp(mean ± t · sd / √n) of the log ratios, t the two-sided 95% quantile with n − 1 degrees
    /// of freedom: the ratio is multiplicative, and with a few seeds a bootstrap has too few
    /// resamples to mean anything.
    static func tInterval(_ ratios: [Double], level: Double = 0.95) -> RatioInterval? {
        guard ratios.count >= 2 else { return nil }
        let logs = ratios.map { log($0) }
        let n = Double(logs.count)
        let mean = logs.reduce(0, +) / n
        let variance = logs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        let halfWidth = studentT975(degreesOfFreedom: logs.count - 1) * (variance / n).squareRoot()
        return RatioInterval(low: exp(mean - halfWidth), high: exp(mean + halfWidth), level: level, seeds: logs.count)
    }

    /// The 97.5% quantile of Student's t (two-sided 95%).
    static func studentT975(degreesOfFreedom df: Int) -> Double {
        let table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
                     2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
                     2.045, 2.042]
        precondition(df >= 1)
        // Past 30 degrees of freedom 1.96 + 2.5/df is within 0.002 of the quantile.
        return df <= table.count ? table[df - 1] : 1.96 + 2.5 / Double(df)
    }
}
