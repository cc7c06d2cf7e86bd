import Foundation

/// One model of the sweep: trained once, then pruned for every task.
public struct ModelPoint: Codable, Equatable, Hashable {
    public var density: Double
    public var dModel: Int
    public var afrac: Double
    public var seed: Int
    /// The random-init control of this shape: its initialisation projected to `density`, never
    /// trained. Absent (not false) for trained models, so their shard parameters stay as they were.
    public var randomInit: Bool?

    public init(density: Double, dModel: Int, afrac: Double, seed: Int, randomInit: Bool? = nil) {
        self.density = density
        self.dModel = dModel
        self.afrac = afrac
        self.seed = seed
        self.randomInit = randomInit
    }

    public var isRandomInit: Bool { randomInit == true }

    /// A stable, readable name, e.g. `d0.25-w64-a0.25-s0`, and `d0.25-w64-a0.25-s0-random-init` for a control.
    public var name: String {
        "d\(format(density))-w\(dModel)-a\(format(afrac))-s\(seed)" + (isRandomInit ? "-random-init" : "")
    }

    /// Same density, width and activation sparsity (any seed, trained or not).
    func sameShape(as other: ModelPoint) -> Bool {
        density == other.density && dModel == other.dModel && afrac == other.afrac
    }
}

private func format(_ value: Double) -> String {
    var text = String(format: "%.6g", value)
    if text.contains("e") { text = String(value) }
    return text
}

/// The kinds of shard the planner makes.
public enum ShardKindName {
    public static let prepare = "prepare"
    public static let train = "train"
    public static let prune = "prune"
    public static let noop = "noop"
}

/// What a shard is told: its place in the grid and the sweep's sections it needs.
public struct ShardParams: Codable, Equatable {
    public var point: ModelPoint?
    public var task: String?
    public var tasks: [String]?
    public var data: DataSection?
    public var model: ModelSection?
    public var train: TrainSection?
    public var prune: PruneSection?
    public var simulate: SimulateSection?

    public init(point: ModelPoint? = nil, task: String? = nil, tasks: [String]? = nil, data: DataSection? = nil,
                model: ModelSection? = nil, train: TrainSection? = nil, prune: PruneSection? = nil,
                simulate: SimulateSection? = nil) {
        self.point = point
        self.task = task
        self.tasks = tasks
        self.data = data
        self.model = model
        self.train = train
        self.prune = prune
        self.simulate = simulate
    }

    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    public static func decode(_ text: String) throws -> ShardParams {
        try JSONDecoder().decode(ShardParams.self, from: Data(text.utf8))
    }

    /// The sweep file sections (or grid keys) in which `other` differs, named as in the file.
    func differingSections(from other: ShardParams) -> [String] {
        [("grid point", point == other.point), ("task", task == other.task), ("grid.task", tasks == other.tasks),
         ("data", data == other.data), ("model", model == other.model), ("train", train == other.train),
         ("prune", prune == other.prune), ("simulate", simulate == other.simulate)]
            .filter { !$0.1 }.map(\.0)
    }
}

/// One node of the plan's DAG.
public struct PlannedShard: Equatable {
    public var id: String
    public var kind: String
    public var params: ShardParams
    public var dependencies: [String]
}

/// The DAG of one prepare shard, one train shard per model
/// point, one prune shard per (model, task) that needs its model's checkpoint.
/// The random-init controls come last, as train shards that only initialise and project (the
/// checkpoint says step 0), so their prune shards read a checkpoint like any other.
///
/// Shards of one kind are leased in plan order, so the models come widest first: a model's training
/// and pruning cost grow with its width whatever its density (the weight gradient is dense and there
/// is a node per channel), and starting the longest shards first keeps a narrow model from holding
/// a slot while the widest one, the sweep's critical path, waits (longest-first scheduling).
public func plan(_ spec: SweepSpec) -> [PlannedShard] {
    let prepareID = ShardKindName.prepare
    var shards = [PlannedShard(id: prepareID, kind: ShardKindName.prepare,
                               params: ShardParams(tasks: spec.grid.task, data: spec.data, model: spec.model,
                                                   simulate: spec.simulate),
                               dependencies: [])]
    for point in widestFirst(spec.modelPoints) + widestFirst(spec.controlPoints) {
        let trainID = "train/\(point.name)"
        var train = spec.train
        if let rate = train.learningRateByWidth[point.dModel] { train.learningRate = rate }
        train.learningRateByWidth = [:]
        shards.append(PlannedShard(id: trainID, kind: ShardKindName.train,
                                   params: ShardParams(point: point, data: spec.data, model: spec.model, train: train,
                                                       simulate: spec.simulate),
                                   dependencies: [prepareID]))
        for task in spec.grid.task {
            shards.append(PlannedShard(id: "prune/\(point.name)/\(task)", kind: ShardKindName.prune,
                                       params: ShardParams(point: point, task: task, model: spec.model,
                                                           prune: spec.prune, simulate: spec.simulate),
                                       dependencies: [prepareID, trainID]))
        }
    }
    return shards
}

/// The points ordered by width, widest first; points of one width keep the grid's order.
func widestFirst(_ points: [ModelPoint]) -> [ModelPoint] {
    points.enumerated().sorted { ($0.element.dModel, -$0.offset) > ($1.element.dModel, -$1.offset) }.map(\.element)
}
