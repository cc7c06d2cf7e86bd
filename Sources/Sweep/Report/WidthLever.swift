import Foundation

/// Sparse models widened at a fixed budget of nonzeros: the lever the paper pulls to make sparse
/// circuits small. A sweep has one when two or more widths share either density · d_model (the
/// nonzeros per neuron, which the method's floor keeps at 16 or more, so the block matrices' nonzeros
/// grow with the width) or density · d_model² (the block matrices' nonzeros themselves).
public struct WidthLever: Sendable {
    public enum Budget: String, Sendable {
        case perNeuron = "density · d_model"
        case total = "density · d_model²"
    }

    public struct Row: Sendable {
        public var model: ReportModel
        /// Geometric mean of edges at the headline target over `tasks`; nil when it reached none.
        public var geometricMeanEdges: Double?
        public var tasksReached: Int
        /// The model's circuit at the headline target, per task of the sweep.
        public var circuits: [String: ReportCircuit]
    }

    public var budget: Budget
    /// The value the rows share, e.g. 16 for density · d_model.
    public var value: Double
    public var afrac: Double
    /// The tasks every row reached (each row's own reached tasks when none is shared).
    public var tasks: [String]
    /// Sorted by width, then seed.
    public var rows: [Row]

    public var title: String { "\(budget.rawValue) = \(ReportFormat.number(value)), afrac \(ReportFormat.number(afrac))" }

    /// Every width lever of the sweep's trained sparse models.
    public static func levers(_ data: ReportData) -> [WidthLever] {
        let sparse = data.trainedModels.filter { $0.role == .sparse }
        var levers: [WidthLever] = []
        for budget in [Budget.perNeuron, .total] {
            func key(_ m: ReportModel) -> Double {
                let width = Double(m.dModel)
                return m.density * (budget == .perNeuron ? width : width * width)
            }
            var groups: [[ReportModel]] = []
            for model in sparse {
                if let i = groups.firstIndex(where: { abs(key($0[0]) / key(model) - 1) < 0.02 && $0[0].afrac == model.afrac }) {
                    groups[i].append(model)
                } else {
                    groups.append([model])
                }
            }
            for group in groups where Set(group.map(\.dModel)).count >= 2 {
                let models = group.sorted { ($0.dModel, $0.seed) < ($1.dModel, $1.seed) }
                let tasks = SweepFrontier.commonTasks(data, among: models)
                let rows = models.map { model -> Row in
                    let atTarget = data.headlineCircuits(of: model)
                    let counted = atTarget.filter { tasks.isEmpty || tasks.contains($0.task) }.compactMap(\.countedEdges)
                    return Row(model: model,
                               geometricMeanEdges: counted.isEmpty ? nil : SweepFrontier.geometricMean(counted.map { Double(max($0, 1)) }),
                               tasksReached: atTarget.filter(\.reachable).count,
                               circuits: Dictionary(atTarget.map { ($0.task, $0) }, uniquingKeysWith: { a, _ in a }))
                }
                levers.append(WidthLever(budget: budget, value: key(models[0]), afrac: models[0].afrac, tasks: tasks, rows: rows))
            }
        }
        return levers
    }
}
