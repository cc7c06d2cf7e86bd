import Foundation
import PythonCode
import SparseGPT

/// `circuitry export`: a run's results under readable names, for use outside Circuitry.
///
///     models/MODEL_ID.safetensors         weights (and with the optimizer, Adam's moments)
///     tokenizer.json                      the tokenizer for Python's `tokenizers`
///     circuitry-tokenizer.json            the same tokenizer for `circuitry --tokenizer`
///     pairs.json                          every task's train and test pairs, tokenized
///     held_out_tokens.bin                 held-out corpus tokens (flat little-endian uint16)
///     circuits/MODEL_ID__TASK.json        the circuit at the headline target loss
///     frontiers/MODEL_ID__TASK.json       every target's circuit of that (model, task)
///     frontier.csv, frontier.json, models.csv, training_curves.csv   the report's tables
///     manifest.json                       the sweep, its models and their files
///
/// MODEL_ID is the report's model identifier (`d0.0625-w128-a0.25-s0`), the `model_id` column of
/// the tables. Only finished shards are exported, so a running sweep exports what it has so far.
public struct RunExport {
    public var runDirectory: URL
    public var withOptimizer = false

    public init(runDirectory: URL) { self.runDirectory = runDirectory }

    public struct Manifest: Codable, Equatable {
        public struct Model: Codable, Equatable {
            public var model_id: String
            public var shard: String
            public var file: String
            public var pretrain_loss: Double?
            public var circuits: [String: String]
            public var frontiers: [String: String]
        }
        public var sweep: String
        public var headline_target: Double
        public var tokenizer_sha256: String?
        public var with_optimizer: Bool
        public var models: [Model]
        public var files: [String]
    }

    /// Writes the export into `directory` (created when missing) and returns its manifest.
    @discardableResult
    public func write(to directory: URL) throws -> Manifest {
        let run = RunDirectory(runDirectory)
        let store = try run.openStore(readOnly: true)
        let artifacts = run.artifacts
        let (spec, done, outputs) = try store.read { tx -> (SweepSpec, Set<String>, [String: [String: String]]) in
            let done = Set(try tx.shards(states: [.done]).map(\.id))
            var outputs: [String: [String: String]] = [:]
            for id in done { outputs[id] = try tx.outputs(ofShard: id) }
            return (try tx.sweepSpec(), done, outputs)
        }
        let report = try ReportData.load(runDirectory: runDirectory)
        let fm = FileManager.default
        for sub in ["models", "circuits", "frontiers"] {
            let url = directory.appendingPathComponent(sub)
            do { try fm.createDirectory(at: url, withIntermediateDirectories: true) } catch {
                throw SweepError("export: cannot create \(url.path): \(error.localizedDescription)")
            }
        }
        var files: [String] = []
        func artifact(_ shard: String, _ output: String) throws -> URL {
            guard let hash = outputs[shard]?[output] else {
                throw SweepError("export: shard \(shard) is done but has no \(output) output")
            }
            return artifacts.appendingPathComponent(hash)
        }
        func put(_ name: String, _ write: (URL) throws -> Void) throws {
            let url = directory.appendingPathComponent(name)
            do { try write(url) } catch let error as SweepError { throw error } catch {
                throw SweepError("export: cannot write \(url.path): \(error)")
            }
            files.append(name)
        }
        func copy(_ source: URL, to name: String) throws {
            try put(name) { url in
                try? fm.removeItem(at: url)
                try fm.copyItem(at: source, to: url)
            }
        }

        var tokenizerHash: String?
        let prepare = ShardKindName.prepare
        if done.contains(prepare), spec.simulate == nil {
            let source = try artifact(prepare, "tokenizer")
            let tokenizer = try BPETokenizer.load(from: source.path)
            tokenizerHash = tokenizer.sha256
            try put("tokenizer.json") { try tokenizer.huggingFace().save(to: $0) }
            try copy(source, to: "circuitry-tokenizer.json")
            try copy(try artifact(prepare, "tasks"), to: "pairs.json")
            try copy(try artifact(prepare, "held_out_tokens"), to: "held_out_tokens.bin")
        }

        var models: [Manifest.Model] = []
        let losses = Dictionary(report.models.map { ($0.identifier, $0.pretrainLoss) }, uniquingKeysWith: { a, _ in a })
        for shard in plan(spec) where shard.kind == ShardKindName.train && done.contains(shard.id) && spec.simulate == nil {
            guard let point = shard.params.point else { continue }
            let id = ReportModel(point: point, embedDensity: spec.model.embedDensity).identifier
            let checkpoint: Checkpoint
            do { checkpoint = try Checkpoint.load(from: try artifact(shard.id, "checkpoint").path) } catch {
                throw SweepError("export: shard \(shard.id): \(error)")
            }
            let file = "models/\(id).safetensors"
            try put(file) { try checkpoint.save(to: $0.path, withOptimizer: withOptimizer) }
            var circuits: [String: String] = [:], frontiers: [String: String] = [:]
            for task in spec.grid.task {
                let pruneID = "prune/\(point.name)/\(task)"
                guard done.contains(pruneID) else { continue }
                let name = "\(id)__\(task).json"
                if outputs[pruneID]?["circuit"] != nil {
                    try copy(try artifact(pruneID, "circuit"), to: "circuits/" + name)
                    circuits[task] = "circuits/" + name
                }
                try copy(try artifact(pruneID, "curve"), to: "frontiers/" + name)
                frontiers[task] = "frontiers/" + name
            }
            models.append(Manifest.Model(model_id: id, shard: shard.id, file: file, pretrain_loss: losses[id] ?? nil,
                                         circuits: circuits, frontiers: frontiers))
        }

        let writer = ReportWriter(data: report, details: try ReportDetails.load(runDirectory: runDirectory))
        try put("frontier.csv") { try Data(writer.frontierCSV().utf8).write(to: $0, options: .atomic) }
        try put("frontier.json") { try writer.frontierJSON().write(to: $0, options: .atomic) }
        try put("models.csv") { try Data(writer.modelsCSV().utf8).write(to: $0, options: .atomic) }
        if !writer.details.trainingCurves.isEmpty {
            try put("training_curves.csv") { try Data(writer.trainingCurvesCSV().utf8).write(to: $0, options: .atomic) }
        }
        let manifest = Manifest(sweep: spec.name, headline_target: spec.prune.headlineTarget, tokenizer_sha256: tokenizerHash,
                                with_optimizer: withOptimizer, models: models, files: files + ["manifest.json"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try put("manifest.json") { try encoder.encode(manifest).write(to: $0, options: .atomic) }
        return manifest
    }
}
