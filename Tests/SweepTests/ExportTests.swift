import Foundation
import XCTest
import Circuits
import PythonCode
import SparseGPT
@testable import Sweep

/// `circuitry export` of a real (tiny) run: every shard run in-process and recorded in the store.
final class ExportTests: XCTestCase {
    private var directory: URL!
    private var runDirectory: URL { directory.appendingPathComponent("run") }

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs the sweep's shards one wave of leases at a time, as workers would, and stores their outputs.
    private func runTinySweep() throws -> SweepSpec {
        let spec = try SweepSpec.parse("""
            name: tiny
            grid: {density: [1.0, 0.5], d_model: [32], task: [var_swap]}
            data: {train_sequences: 200, held_out_sequences: 8, train_pairs: 8, test_pairs: 4}
            model: {context: 32}
            train: {steps: 6, batch_size: 2, checkpoint_every: 0.5}
            prune: {steps: 10, lambdas: [0.001], target_losses: [0.6], headline_target: 0.6, batch_size: 8}
            """, file: "tiny.yaml")
        try RunDirectory(runDirectory).create(spec: spec)
        let store = try RunDirectory(runDirectory).openStore()
        let artifacts = runDirectory.appendingPathComponent("artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        var now = 1.0
        while true {
            let leases = try store.write { tx in try tx.lease(owner: "w", count: 10, now: now, expiry: now + 1000) }
            if leases.isEmpty { break }
            for lease in leases {
                let job = ShardJob(shard: lease.shard, attempt: lease.attempt, kind: lease.kind, params: lease.params,
                                   inputs: lease.inputs.mapValues { artifacts.appendingPathComponent($0.hash).path },
                                   resume: nil, resumeStep: nil,
                                   outputDirectory: directory.appendingPathComponent("out/\(lease.shard)").path)
                let output = try ShardRunner.run(job) { _ in }
                try store.write { tx in
                    var hashes: [String: String] = [:]
                    for (name, url) in output.outputs {
                        let data = try Data(contentsOf: url)
                        let hash = SHA256.hex(data)
                        try data.write(to: artifacts.appendingPathComponent(hash))
                        try tx.registerArtifact(hash: hash, size: data.count, kind: name, now: now)
                        hashes[name] = hash
                    }
                    XCTAssertEqual(try tx.recordResult(lease.key, outputs: hashes,
                                                       summary: encodeSummary(output.summary), now: now), .recorded)
                }
            }
            now += 1
        }
        XCTAssertTrue(try store.read { try $0.counts() }.finished)
        return spec
    }

    func testExportsModelsTokenizerPairsCircuitsAndTablesUnderReadableNames() throws {
        _ = try runTinySweep()
        let out = directory.appendingPathComponent("export")
        let manifest = try RunExport(runDirectory: runDirectory).write(to: out)
        XCTAssertEqual(manifest.sweep, "tiny")
        XCTAssertEqual(manifest.models.map(\.model_id), ["d1-w32-a1-s0", "d0.5-w32-a0.25-s0", "d0.5-w32-a0.25-s0-random-init"])
        for file in manifest.files {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), file)
        }
        XCTAssertTrue(manifest.files.contains("circuits/d0.5-w32-a0.25-s0__var_swap.json"))
        XCTAssertTrue(manifest.files.contains("frontiers/d0.5-w32-a0.25-s0__var_swap.json"))

        // Weights only, equal to the run's checkpoint, and tagged with the run's tokenizer.
        let tokenizer = try BPETokenizer.load(from: out.appendingPathComponent("circuitry-tokenizer.json").path)
        XCTAssertEqual(manifest.tokenizer_sha256, tokenizer.sha256)
        let exported = out.appendingPathComponent("models/d0.5-w32-a0.25-s0.safetensors").path
        let file = try SafeTensorsFile.read(exported)
        XCTAssertNil(file.tensors["adam.m.wte"])
        XCTAssertEqual(file.metadata["tokenizer_sha256"], tokenizer.sha256)
        let hash = try XCTUnwrap(try RunDirectory(runDirectory).openStore(readOnly: true)
            .read { try $0.outputs(ofShard: "train/d0.5-w32-a0.25-s0") }["checkpoint"])
        let original = try Checkpoint.load(from: runDirectory.appendingPathComponent("artifacts/\(hash)").path)
        XCTAssertEqual(try Checkpoint.load(from: exported).parameters, original.parameters)

        let withOptimizer = directory.appendingPathComponent("export-optimizer")
        var export = RunExport(runDirectory: runDirectory)
        export.withOptimizer = true
        try export.write(to: withOptimizer)
        let full = try Checkpoint.load(from: withOptimizer.appendingPathComponent("models/d0.5-w32-a0.25-s0.safetensors").path)
        XCTAssertEqual(full.adamV, original.adamV)
        XCTAssertNotEqual(original.adamV.filter { $0 != 0 }.count, 0)

        // Every table joins on model_id.
        for table in ["models.csv", "frontier.csv", "training_curves.csv"] {
            let text = try String(contentsOf: out.appendingPathComponent(table), encoding: .utf8)
            XCTAssertTrue(text.hasPrefix("model_id,"), text)
            XCTAssertTrue(text.contains("\nd0.5-w32-a0.25-s0,0.5,"), text)
        }

        // Another tokenizer is refused by name and hash.
        let other = try BPETokenizer.train(on: "x = 1\ny = 2\n", vocabularySize: 260)
        XCTAssertThrowsError(try TokenizerIdentity.check(other, file: "other.json", against: original, file: "model.safetensors")) {
            let message = "\($0)"
            XCTAssertTrue(message.contains(tokenizer.sha256) && message.contains(other.sha256), message)
            XCTAssertTrue(message.contains("other.json is not the tokenizer model.safetensors was trained on"), message)
        }
        XCTAssertNoThrow(try TokenizerIdentity.check(tokenizer, file: "t.json", against: original, file: "m.safetensors"))

        // The sweep's pairs record their tokenizer; pairs made with another one are refused.
        let pairs = out.appendingPathComponent("pairs.json")
        let recorded = try TaskPairsFile.loadWithTokenizer(pairs)
        XCTAssertEqual(recorded.tokenizerHash, tokenizer.sha256)
        XCTAssertNoThrow(try TokenizerIdentity.check(pairsFile: pairs.path, against: original, file: "m.safetensors"))
        let foreign = directory.appendingPathComponent("foreign-pairs.json")
        try TaskPairsFile.save(recorded.tasks, tokenizerHash: other.sha256, to: foreign)
        XCTAssertEqual(try TaskPairsFile.load(foreign), recorded.tasks)
        XCTAssertThrowsError(try TokenizerIdentity.check(pairsFile: foreign.path, against: original, file: "m.safetensors")) {
            let message = "\($0)"
            XCTAssertTrue(message.contains(tokenizer.sha256) && message.contains(other.sha256), message)
            XCTAssertTrue(message.contains("foreign-pairs.json was made with another tokenizer"), message)
        }

        try runTheReadmePythonExample(in: directory, tokenizer: tokenizer)
    }

    /// The README's Python example, run in deploy/setup.sh's environment against this export.
    private func runTheReadmePythonExample(in workingDirectory: URL, tokenizer: BPETokenizer) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let python = root.appendingPathComponent(".venv-tests/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            return XCTFail("no \(python.path): `deploy/setup.sh --tests` makes it (numpy, pandas, safetensors, tokenizers)")
        }
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```python\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        XCTAssertEqual(blocks.count, 1, "README.md has one Python example")
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", try XCTUnwrap(blocks.first)]
        process.currentDirectoryURL = workingDirectory
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, errorText)
        let ids = tokenizer.encode("def f(x):\n    return x\n")
        XCTAssertTrue(text.contains("[" + ids.map(String.init).joined(separator: ", ") + "] 'def f(x):\\n    return x\\n'"), text)
        XCTAssertTrue(text.contains("(512, 32) (128, 32)"), text)
        XCTAssertTrue(text.contains("var_swap"), text)
    }
}
