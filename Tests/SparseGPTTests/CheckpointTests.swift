import Foundation
import XCTest
@testable import SparseGPT

final class CheckpointTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sparsegpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    let model = ModelConfig(vocab: 29, context: 8, dModel: 32, nLayer: 2, afrac: 0.5)
    let training = TrainingConfig(density: 0.5, steps: 6, batch: 3, seed: 11)

    func makeRun(threads: Int = 1, from checkpoint: Checkpoint? = nil) throws -> TrainingRun {
        let trainer = try checkpoint?.makeTrainer(threads: threads)
            ?? Trainer(model: GPT(config: model, seed: training.seed, threads: threads), config: training)
        let data = try TokenWindows(tokens: randomTokens(count: 400, vocab: model.vocab, seed: 4), length: model.context, vocab: model.vocab)
        return try TrainingRun(trainer: trainer, data: data, heldOut: data.evenlySpacedWindows(count: 5))
    }

    func testSaveAndLoadRoundTrip() throws {
        let run = try makeRun()
        try run.run(until: 2)
        try Checkpoint(trainer: run.trainer).save(to: path("a.safetensors"))
        let loaded = try Checkpoint.load(from: path("a.safetensors"))
        XCTAssertEqual(loaded.model, model)
        XCTAssertEqual(loaded.training.density, training.density)
        XCTAssertEqual(loaded.training.resolvedEmbedDensity, training.resolvedEmbedDensity)
        XCTAssertEqual(loaded.step, 2)
        XCTAssertEqual(loaded.parameters, run.trainer.model.parameters.array)
        XCTAssertEqual(loaded.adamM, run.trainer.adamM.array)
        XCTAssertEqual(loaded.adamV, run.trainer.adamV.array)
    }

    /// Training N steps straight and N/2 + save + load + N/2 end bit for bit in the same weights and moments.
    func testResumeIsBitwiseIdentical() throws {
        let straight = try makeRun()
        try straight.run()
        let first = try makeRun()
        try first.run(until: training.steps / 2)
        try Checkpoint(trainer: first.trainer).save(to: path("half.safetensors"))
        let resumed = try makeRun(from: Checkpoint.load(from: path("half.safetensors")))
        XCTAssertEqual(resumed.trainer.step, training.steps / 2)
        try resumed.run()
        XCTAssertEqual(resumed.trainer.model.parameters.array, straight.trainer.model.parameters.array)
        XCTAssertEqual(resumed.trainer.adamM.array, straight.trainer.adamM.array)
        XCTAssertEqual(resumed.trainer.adamV.array, straight.trainer.adamV.array)
    }

    func testSameSeedAndThreadsGiveSameWeights() throws {
        let a = try makeRun(threads: 2), b = try makeRun(threads: 2)
        try a.run()
        try b.run()
        XCTAssertEqual(a.trainer.model.parameters.array, b.trainer.model.parameters.array)
        var progress: [TrainingProgress] = []
        let c = try makeRun()
        try c.run(reportEvery: 2) { progress.append($0) }
        XCTAssertEqual(progress.map(\.step), [2, 4, 6])
        XCTAssertNotNil(progress.last?.heldOutLoss)
    }

    func testCorruptCheckpointsNameFileAndProblem() throws {
        let run = try makeRun()
        let good = path("good.safetensors")
        try Checkpoint(trainer: run.trainer).save(to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        func expectError(_ data: Data, _ needle: String, line: UInt = #line) throws {
            let p = path("bad-\(line).safetensors")
            try data.write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try Checkpoint.load(from: p), line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(p) && text.contains(needle), "\(text) should name \(p) and \(needle)", line: line)
            }
        }
        try expectError(bytes.prefix(bytes.count - 100), "truncated")
        try expectError(bytes.prefix(5), "too short")
        var hugeHeader = bytes
        hugeHeader.replaceSubrange(0..<8, with: [0xff, 0xff, 0xff, 0, 0, 0, 0, 0])
        try expectError(hugeHeader, "bad header length")
        var badJSON = bytes
        badJSON[9] = UInt8(ascii: "#")
        try expectError(badJSON, "JSON")
        // a valid file that lacks a tensor, and one whose tensor has the wrong shape
        var file = try SafeTensorsFile.read(good)
        file.tensors["h.1.mlp.c_fc"] = nil
        try file.write(path("missing.safetensors"))
        XCTAssertThrowsError(try Checkpoint.load(from: path("missing.safetensors"))) { XCTAssertTrue("\($0)".contains("missing tensor h.1.mlp.c_fc")) }
        file = try SafeTensorsFile.read(good)
        file.tensors["wpe"] = SafeTensor(floats: [Float](repeating: 0, count: 32 * 4), shape: [4, 32])
        try file.write(path("shape.safetensors"))
        XCTAssertThrowsError(try Checkpoint.load(from: path("shape.safetensors"))) { XCTAssertTrue("\($0)".contains("tensor wpe has shape [4, 32], expected [8, 32]"), "\($0)") }
        file = try SafeTensorsFile.read(good)
        file.metadata["config"] = "{not json"
        try file.write(path("config.safetensors"))
        XCTAssertThrowsError(try Checkpoint.load(from: path("config.safetensors"))) { XCTAssertTrue("\($0)".contains("metadata config"), "\($0)") }
        XCTAssertThrowsError(try Checkpoint.load(from: path("absent.safetensors"))) { XCTAssertTrue("\($0)".contains("absent.safetensors")) }
    }

    /// Python (struct + json + numpy, as the reference's load_safetensors) reads what we write.
    func testPythonReadsCheckpoint() throws {
        let run = try makeRun()
        try run.run(until: 1)
        let file = path("py.safetensors")
        try Checkpoint(trainer: run.trainer).save(to: file)
        let script = """
        import json, struct, sys
        import numpy as np
        raw = open(sys.argv[1], 'rb').read()
        n = struct.unpack('<Q', raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        meta = header.pop('__metadata__')
        out = {'step': meta['step'], 'd_model': json.loads(meta['config'])['d_model']}
        for k, h in header.items():
            a, b = h['data_offsets']
            t = np.frombuffer(raw[8 + n + a:8 + n + b], '<f4').reshape(h['shape'])
            out[k] = [list(t.shape), float(np.abs(t.astype(np.float64)).sum())]
        print(json.dumps(out))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, file]
        let pipe = Pipe(), errors = Pipe()
        process.standardOutput = pipe
        process.standardError = errors
        do { try process.run() } catch { throw XCTSkip("python3 is not available: \(error)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if errorText.contains("No module named 'numpy'") || process.terminationStatus == 127 {
            throw XCTSkip("python3 with numpy is not available")
        }
        XCTAssertEqual(process.terminationStatus, 0, errorText)
        let parsed = try JSONSerialization.jsonObject(with: output) as! [String: Any]
        XCTAssertEqual(parsed["step"] as? String, "1")
        XCTAssertEqual(parsed["d_model"] as? Int, 32)
        let gpt = run.trainer.model
        for t in gpt.layout.tensors {
            let entry = parsed[t.name] as! [Any]
            XCTAssertEqual(entry[0] as! [Int], t.shape, t.name)
            let sum = gpt.tensor(t.name)!.reduce(0.0) { $0 + abs(Double($1)) }
            XCTAssertEqual(entry[1] as! Double, sum, accuracy: 1e-9 * max(1, sum), t.name)
            XCTAssertNotNil(parsed["adam.m." + t.name], "adam.m.\(t.name)")
        }
    }

    func testRunConfigFromYAML() throws {
        let run = try RunConfig.fromYAML("d_model: 128\nn_layer: 3\ndensity: 0.125\nsteps: 50\nseed: 7\n", file: "r.yaml")
        XCTAssertEqual(run.model.dModel, 128)
        XCTAssertEqual(run.model.nLayer, 3)
        XCTAssertEqual(run.model.vocab, 512)
        XCTAssertEqual(run.training.density, 0.125)
        XCTAssertEqual(run.training.resolvedEmbedDensity, 0.5)
        XCTAssertEqual(run.training.seed, 7)
        XCTAssertThrowsError(try RunConfig.fromYAML("d_modle: 128\n", file: "r.yaml")) { XCTAssertTrue("\($0)".contains("unknown key d_modle")) }
        XCTAssertThrowsError(try RunConfig.fromYAML("d_model: wide\n", file: "r.yaml")) { XCTAssertTrue("\($0)".contains("d_model"), "\($0)") }
    }
}
