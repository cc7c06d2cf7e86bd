import Foundation
import Circuits
import Yams

/// The ten tasks of the method.
public let knownTasks = [
    "single_double_quote", "bracket_counting", "set_or_string", "set_or_string_fixedvarname",
    "while_return_true", "bracket_brace", "fstring_brace", "var_swap", "if_equals", "enumerate_range",
]

/// A sweep file that cannot be used, with the place that is wrong.
public struct SweepFileError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let key: String
    public let message: String

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return key.isEmpty ? "\(place): \(message)" : "\(place): \(key): \(message)"
    }
}

public struct GridSection: Codable, Equatable {
    public var density: [Double]
    public var dModel: [Int]
    /// Activation sparsity (AbsTopK) of the sparse models (density < 1).
    public var afrac: [Double]
    /// Activation sparsity of the dense models (density 1). The dense baseline is dense in weights
    /// and activations, so this is [1] unless the file lists more; any other value is an extra
    /// series ("dense with AbsTopK"), never the baseline.
    public var denseAfrac: [Double] = [1]
    public var seed: [Int]
    public var task: [String]
    /// Combinations left out of the product, e.g. a density below the floor at the narrowest width.
    public var exclude: [GridExclusion]?

    func excludes(_ point: ModelPoint) -> Bool { exclude?.contains { $0.matches(point) } ?? false }
}

/// The controls every report shows beside the frontier.
public struct ControlsSection: Codable, Equatable {
    /// One randomly initialised model per sparse shape (density, d_model, afrac), projected to its
    /// density but never trained, pruned for every task like the trained models.
    public var randomInit = true
}

extension ControlsSection {
    init(yaml: YAMLSection) throws {
        self.init()
        randomInit = try yaml.bool("random_init") ?? randomInit
        try yaml.rejectUnknownKeys()
    }
}

/// Model points to leave out of a grid: every point that has all the given values.
public struct GridExclusion: Codable, Equatable {
    public var density: Double?
    public var dModel: Int?
    public var afrac: Double?
    public var seed: Int?

    func matches(_ point: ModelPoint) -> Bool {
        (density.map { abs($0 - point.density) < 1e-12 } ?? true) && (dModel.map { $0 == point.dModel } ?? true)
            && (afrac.map { abs($0 - point.afrac) < 1e-12 } ?? true) && (seed.map { $0 == point.seed } ?? true)
    }
}

/// Data for the prepare shard: corpus, tokenizer and task pairs.
public struct DataSection: Codable, Equatable {
    /// "synthetic", or a directory of `.py` files.
    public var corpus: String = "synthetic"
    public var corpusSeed: Int = 0
    /// Number of training sequences of `context` tokens drawn from the corpus.
    public var trainSequences: Int = 20_000
    public var heldOutSequences: Int = 256
    public var vocabSize: Int = 512
    public var trainPairs: Int = 2048
    public var testPairs: Int = 512
}

public struct ModelSection: Codable, Equatable {
    public var nLayer: Int = 2
    public var context: Int = 64
    public var dHead: Int = 16
    /// Density of wte, wpe and lm_head; nil means min(1, 4 · density).
    public var embedDensity: Double?
}

public struct TrainSection: Codable, Equatable {
    public var steps: Int = 2000
    public var batchSize: Int = 32
    public var learningRate: Double = 1.28e-2
    /// Learning rate per d_model, overriding `learningRate` for that width.
    public var learningRateByWidth: [Int: Double] = [:]
    /// Fraction of training between intermediate checkpoint uploads.
    public var checkpointEvery: Double = 0.1
}

public struct PruneSection: Codable, Equatable {
    public var steps: Int = 400
    public var learningRate: Double = 3e-3
    public var batchSize: Int = 64
    public var lambdas: [Double] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    public var targetLosses: [Double] = [0.05, 0.1, 0.15, 0.2, 0.3]
    public var headlineTarget: Double = 0.15
    /// Where bisection over k starts; nil is the default, the trained mask (and keeps the plan of
    /// sweeps that do not set it unchanged).
    public var bisection: BisectionStart?
    /// Calibrated discretisation; nil is the default, on (and keeps the plan of sweeps that do not set it).
    public var calibration: Bool?
    /// τ initialisations per λ; nil is the default, `FrontierSettings().tauInitializations`.
    public var tauInitializations: Int?
    /// Standard deviation of the noise on the first initialisation's τ; nil is the default,
    /// `PruningSettings().tauNoise`.
    public var tauNoise: Double?
    /// λ tried past each end of the grid while that end holds a best circuit; nil is the default,
    /// `FrontierSettings().lambdaExtensions`.
    public var lambdaExtensions: Int?
}

public struct RetrySection: Codable, Equatable {
    public var maxAttempts: Int = 3
    public var backoffSeconds: Double = 2
    public var backoffMaxSeconds: Double = 60
}

public struct TimeoutSection: Codable, Equatable {
    public var heartbeatSeconds: Double = 1
    /// A worker silent this long is dead and its leases go back to pending.
    public var workerDeadSeconds: Double = 5
    /// Wall-clock limit of one attempt of a shard; 0 for none.
    public var shardSeconds: Double = 0
}

/// A stand-in for the model kinds: every shard of the plan runs a timed
/// simulation instead of training or pruning, for exercising the machinery.
public struct SimulateSection: Codable, Equatable {
    public var steps: Int = 20
    public var stepSeconds: Double = 0.05
    /// Shards (by id) whose child process aborts on its first attempt.
    public var crashFirstAttempt: [String] = []
    /// Shards (by id) that fail on every attempt.
    public var alwaysFail: [String] = []
    /// Shards (by id) that fail with a deterministic error, which is not retried.
    public var failPermanently: [String] = []
    /// Tasks the prepare shard reports it cannot make pairs for.
    public var unpreparableTasks: [String] = []
}

/// A parsed and validated sweep file.
public struct SweepSpec: Codable, Equatable {
    public var name: String
    public var grid: GridSection
    public var data = DataSection()
    public var model = ModelSection()
    public var train = TrainSection()
    public var prune = PruneSection()
    public var retries = RetrySection()
    public var timeouts = TimeoutSection()
    public var controls = ControlsSection()
    public var simulate: SimulateSection?

    /// Reads and validates a sweep file, with `overrides` from the command line replacing its
    /// keys first; every problem is reported with file, line and key (or the override at fault).
    public static func load(from url: URL, overrides: [SweepOverride] = []) throws -> SweepSpec {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw SweepFileError(file: url.path, line: nil, key: "", message: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, file: url.path, defaultName: url.deletingPathExtension().lastPathComponent, overrides: overrides)
    }

    public static func parse(_ text: String, file: String, defaultName: String = "sweep",
                             overrides: [SweepOverride] = []) throws -> SweepSpec {
        var root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw SweepFileError(file: file, line: yamlErrorLine(error), key: "", message: "not valid YAML: \(error)")
        }
        guard root != nil else { throw SweepFileError(file: file, line: nil, key: "", message: "the file is empty") }
        var overridden: [String: String] = [:]
        for override in overrides {
            try override.apply(to: &root!, file: file)
            overridden[override.key] = override.origin
        }
        let top = try YAMLSection(root!, file: file, path: "", overridden: overridden)
        var spec = SweepSpec(name: try top.string("name") ?? defaultName,
                             grid: try GridSection(yaml: try top.section("grid", required: true)!))
        spec.data = try top.section("data").map(DataSection.init(yaml:)) ?? spec.data
        spec.model = try top.section("model").map(ModelSection.init(yaml:)) ?? spec.model
        spec.train = try top.section("train").map(TrainSection.init(yaml:)) ?? spec.train
        spec.prune = try top.section("prune").map(PruneSection.init(yaml:)) ?? spec.prune
        spec.retries = try top.section("retries").map(RetrySection.init(yaml:)) ?? spec.retries
        spec.timeouts = try top.section("timeouts").map(TimeoutSection.init(yaml:)) ?? spec.timeouts
        spec.controls = try top.section("controls").map(ControlsSection.init(yaml:)) ?? spec.controls
        spec.simulate = try top.section("simulate").map(SimulateSection.init(yaml:))
        try top.rejectUnknownKeys()
        try spec.validatePoints(top: top)
        return spec
    }

    /// the neuron floor of 4 entries swamps the budget below density · d_model = 16.
    private func validatePoints(top: YAMLSection) throws {
        let grid = try top.section("grid")!
        for width in self.grid.dModel where width % model.dHead != 0 {
            throw grid.error("d_model", "\(width) is not a multiple of d_head \(model.dHead)")
        }
        let all = productPoints
        for (index, exclusion) in (self.grid.exclude ?? []).enumerated() where !all.contains(where: exclusion.matches) {
            throw grid.error("exclude", "entry \(index + 1) matches no point of the grid", line: grid.itemLine("exclude", index))
        }
        for point in all where !self.grid.excludes(point) && point.density * Double(point.dModel) < 16 - 1e-9 {
            throw grid.error("density", "density \(point.density) with d_model \(point.dModel) is below the floor density · d_model ≥ 16"
                             + " (leave it out with grid.exclude)")
        }
        if modelPoints.isEmpty { throw grid.error("exclude", "leaves no model to train") }
    }

    /// The grid's models: the product of its lists, less `exclude`.
    public var modelPoints: [ModelPoint] { productPoints.filter { !grid.excludes($0) } }

    /// The random-init controls: one per sparse shape (density, d_model, afrac) of the grid, at the
    /// shape's first seed, when `controls.random_init` is on. A control costs its shape's pruning
    /// again, so one seed of it is enough to tell noise from circuits.
    public var controlPoints: [ModelPoint] {
        guard controls.randomInit else { return [] }
        var points: [ModelPoint] = []
        for point in modelPoints where point.density < 1 && !points.contains(where: { $0.sameShape(as: point) }) {
            var control = point
            control.randomInit = true
            points.append(control)
        }
        return points
    }

    /// The shard names must stay stable, so the grid values are formatted once here.
    private var productPoints: [ModelPoint] {
        var points: [ModelPoint] = []
        for density in grid.density {
            for width in grid.dModel {
                for afrac in density >= 1 ? grid.denseAfrac : grid.afrac {
                    for seed in grid.seed {
                        points.append(ModelPoint(density: density, dModel: width, afrac: afrac, seed: seed))
                    }
                }
            }
        }
        return points
    }
}

private func yamlErrorLine(_ error: YamlError) -> Int? {
    switch error {
    case let .scanner(_, _, mark, _), let .parser(_, _, mark, _): return mark.line
    default: return nil
    }
}

/// `--set KEY=VALUE`: one key of a sweep file replaced (or added) from the command line, before
/// the file is validated, so a bad value gets the file's own errors, naming the key.
///
/// KEY is a dotted path of mapping keys (`data.corpus`, `train.learning_rate_by_width.256`);
/// VALUE is read as YAML, so `train.steps=3000` is an integer and `grid.d_model=[64, 128]` a list.
public struct SweepOverride: Equatable, Sendable, CustomStringConvertible {
    /// The dotted key, e.g. `data.corpus`.
    public let key: String
    public let value: String

    public init(_ argument: String) throws {
        guard let equals = argument.firstIndex(of: "=") else {
            throw SweepFileError(file: "--set \(argument)", line: nil, key: "",
                                 message: "expected KEY=VALUE, e.g. data.corpus=/usr/lib/python3.11")
        }
        key = String(argument[..<equals]).trimmingCharacters(in: .whitespaces)
        value = String(argument[argument.index(after: equals)...])
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard !key.isEmpty, parts.allSatisfy({ !$0.isEmpty && !$0.contains(where: \.isWhitespace) }) else {
            throw SweepFileError(file: origin, line: nil, key: key,
                                 message: "expected a dotted key such as data.corpus before the =")
        }
    }

    /// How the override is named in errors.
    var origin: String { "--set \(key)=\(value)" }

    public var description: String { origin }

    /// Sets the key in `root`, making the mappings on its path if the file lacks them.
    func apply(to root: inout Node, file: String) throws {
        let node: Node?
        do {
            node = try Yams.compose(yaml: value)
        } catch {
            throw SweepFileError(file: origin, line: nil, key: key, message: "the value is not valid YAML")
        }
        guard let node else { throw SweepFileError(file: origin, line: nil, key: key, message: "give a value after the =") }
        try Self.set(node, at: key.split(separator: ".").map(String.init)[...], in: &root, origin: origin, traversed: "")
    }

    private static func set(_ value: Node, at path: ArraySlice<String>, in node: inout Node, origin: String, traversed: String) throws {
        let name = path.first!
        let here = traversed.isEmpty ? name : "\(traversed).\(name)"
        if node.null != nil { node = Node.mapping(Node.Mapping([])) }
        guard var mapping = node.mapping else {
            throw SweepFileError(file: origin, line: nil, key: traversed, message: "is not a mapping, so it has no key \(name)")
        }
        let index = mapping.indices.first { mapping[$0].key.scalar?.string == name }
        if path.count == 1 {
            if let index { mapping[index] = (key: mapping[index].key, value: value) } else { mapping[Node(name)] = value }
        } else {
            var child = index.map { mapping[$0].value } ?? Node.mapping(Node.Mapping([]))
            try set(value, at: path.dropFirst(), in: &child, origin: origin, traversed: here)
            if let index { mapping[index] = (key: mapping[index].key, value: child) } else { mapping[Node(name)] = child }
        }
        node = .mapping(mapping)
    }
}

/// One mapping of a sweep file, read key by key so that anything left over is
/// reported as unknown.
final class YAMLSection {
    let file: String
    let path: String
    let line: Int?
    /// Dotted keys set from the command line, with the override that set each; their errors
    /// name the override instead of a line of the file.
    let overridden: [String: String]
    private let entries: [(key: String, keyLine: Int?, value: Node)]
    private var readKeys: Set<String> = []

    /// `line` is where the section's key stands, reported for keys missing from it.
    init(_ node: Node, file: String, path: String, line: Int? = nil, overridden: [String: String] = [:]) throws {
        self.file = file
        self.path = path
        self.line = line ?? node.mark?.line
        self.overridden = overridden
        guard let mapping = node.mapping else {
            let origin = Self.origin(of: path, in: overridden)
            throw SweepFileError(file: origin ?? file, line: origin == nil ? node.mark?.line : nil, key: path.isEmpty ? "" : path,
                                 message: "expected a mapping of keys to values")
        }
        var entries: [(String, Int?, Node)] = []
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                throw SweepFileError(file: file, line: key.mark?.line, key: path, message: "keys must be plain names")
            }
            if entries.contains(where: { $0.0 == name }) {
                throw SweepFileError(file: file, line: key.mark?.line, key: qualified(name, path), message: "given twice")
            }
            entries.append((name, key.mark?.line, value))
        }
        self.entries = entries.map { (key: $0.0, keyLine: $0.1, value: $0.2) }
    }

    var keys: [String] { entries.map(\.key) }

    func error(_ key: String, _ message: String, line: Int? = nil) -> SweepFileError {
        let name = qualified(key, path)
        if let origin = overrideOrigin(of: name) {
            return SweepFileError(file: origin, line: nil, key: name, message: message)
        }
        return SweepFileError(file: file, line: line ?? entries.first { $0.key == key }?.keyLine ?? self.line,
                              key: name, message: message)
    }

    /// The override that set `name` or a mapping it lies in, if any.
    private func overrideOrigin(of name: String) -> String? { Self.origin(of: name, in: overridden) }

    private static func origin(of name: String, in overridden: [String: String]) -> String? {
        var prefix = name
        while true {
            if let origin = overridden[prefix] { return origin }
            guard let dot = prefix.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            prefix = String(prefix[..<dot])
        }
    }

    /// A list of mappings under `key`, each read as a section of its own.
    func sections(_ key: String) throws -> [YAMLSection]? {
        guard let node = value(key) else { return nil }
        guard let sequence = node.sequence, !sequence.isEmpty else { throw error(key, "expected a nonempty list of mappings") }
        return try sequence.enumerated().map { index, item in
            try YAMLSection(item, file: file, path: "\(qualified(key, path))[\(index + 1)]", line: item.mark?.line,
                            overridden: overridden)
        }
    }

    func itemLine(_ key: String, _ index: Int) -> Int? {
        value(key)?.sequence.flatMap { index < $0.count ? $0[index].mark?.line : nil }
    }

    private func value(_ key: String) -> Node? {
        readKeys.insert(key)
        guard let node = entries.first(where: { $0.key == key })?.value else { return nil }
        if node.null != nil, node.scalar?.style == .plain { return nil }
        return node
    }

    func rejectUnknownKeys() throws {
        if let unknown = entries.first(where: { !readKeys.contains($0.key) }) {
            throw error(unknown.key, "unknown key")
        }
    }

    func section(_ key: String, required: Bool = false) throws -> YAMLSection? {
        guard let node = value(key) else {
            if required { throw error(key, "missing (required)") }
            return nil
        }
        return try YAMLSection(node, file: file, path: qualified(key, path),
                               line: entries.first { $0.key == key }?.keyLine, overridden: overridden)
    }

    func string(_ key: String) throws -> String? {
        guard let node = value(key) else { return nil }
        guard let scalar = node.scalar, node.tag == .init(.str) else { throw error(key, "expected a string") }
        return scalar.string
    }

    func bool(_ key: String) throws -> Bool? {
        guard let node = value(key) else { return nil }
        guard node.tag == .init(.bool), let value = node.bool else {
            throw error(key, "expected true or false, found '\(node.scalar?.string ?? "a collection")'", line: node.mark?.line)
        }
        return value
    }

    func int(_ key: String, min: Int) throws -> Int? {
        guard let node = value(key) else { return nil }
        return try intValue(node, key: key, min: min)
    }

    func double(_ key: String, above: Double? = nil, atLeast: Double? = nil, atMost: Double? = nil) throws -> Double? {
        guard let node = value(key) else { return nil }
        return try doubleValue(node, key: key, above: above, atLeast: atLeast, atMost: atMost)
    }

    func ints(_ key: String, min: Int, required: Bool = false) throws -> [Int]? {
        try list(key, required: required) { try intValue($0, key: key, min: min) }
    }

    func doubles(_ key: String, above: Double? = nil, atMost: Double? = nil, required: Bool = false) throws -> [Double]? {
        try list(key, required: required) { try doubleValue($0, key: key, above: above, atLeast: nil, atMost: atMost) }
    }

    func strings(_ key: String, required: Bool = false) throws -> [String]? {
        try list(key, required: required) { node in
            guard let scalar = node.scalar, node.tag == .init(.str) else {
                throw error(key, "expected a list of strings", line: node.mark?.line)
            }
            return scalar.string
        }
    }

    private func list<T: Equatable>(_ key: String, required: Bool, _ element: (Node) throws -> T) throws -> [T]? {
        guard let node = value(key) else {
            if required { throw error(key, "missing (required)") }
            return nil
        }
        guard let sequence = node.sequence else { throw error(key, "expected a list, e.g. [a, b]") }
        if sequence.isEmpty { throw error(key, "the list is empty") }
        let values = try sequence.map(element)
        for (index, value) in values.enumerated() where values[..<index].contains(value) {
            throw error(key, "\(value) is listed twice", line: sequence[index].mark?.line)
        }
        return values
    }

    private func intValue(_ node: Node, key: String, min: Int) throws -> Int {
        guard node.tag == .init(.int), let value = node.int else {
            throw error(key, "expected an integer, found '\(node.scalar?.string ?? "a collection")'", line: node.mark?.line)
        }
        if value < min { throw error(key, "must be at least \(min), found \(value)", line: node.mark?.line) }
        return value
    }

    private func doubleValue(_ node: Node, key: String, above: Double?, atLeast: Double?, atMost: Double?) throws -> Double {
        guard node.tag == .init(.float) || node.tag == .init(.int), let value = node.float else {
            throw error(key, "expected a number, found '\(node.scalar?.string ?? "a collection")'", line: node.mark?.line)
        }
        if let above, !(value > above) { throw error(key, "must be greater than \(above), found \(value)", line: node.mark?.line) }
        if let atLeast, value < atLeast { throw error(key, "must be at least \(atLeast), found \(value)", line: node.mark?.line) }
        if let atMost, value > atMost { throw error(key, "must be at most \(atMost), found \(value)", line: node.mark?.line) }
        return value
    }
}

private func qualified(_ key: String, _ path: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

/// Specs stored by runs made before `grid.dense_afrac` and `controls` existed still decode, with
/// those keys at their defaults.
extension GridSection {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(density: try c.decode([Double].self, forKey: .density), dModel: try c.decode([Int].self, forKey: .dModel),
                  afrac: try c.decode([Double].self, forKey: .afrac),
                  denseAfrac: try c.decodeIfPresent([Double].self, forKey: .denseAfrac) ?? [1],
                  seed: try c.decode([Int].self, forKey: .seed), task: try c.decode([String].self, forKey: .task),
                  exclude: try c.decodeIfPresent([GridExclusion].self, forKey: .exclude))
    }
}

extension SweepSpec {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name), grid: try c.decode(GridSection.self, forKey: .grid),
                  data: try c.decode(DataSection.self, forKey: .data), model: try c.decode(ModelSection.self, forKey: .model),
                  train: try c.decode(TrainSection.self, forKey: .train), prune: try c.decode(PruneSection.self, forKey: .prune),
                  retries: try c.decode(RetrySection.self, forKey: .retries),
                  timeouts: try c.decode(TimeoutSection.self, forKey: .timeouts),
                  controls: try c.decodeIfPresent(ControlsSection.self, forKey: .controls) ?? ControlsSection(),
                  simulate: try c.decodeIfPresent(SimulateSection.self, forKey: .simulate))
    }
}
