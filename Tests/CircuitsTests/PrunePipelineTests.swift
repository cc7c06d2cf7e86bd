import Foundation
import SparseGPT
import XCTest
@testable import Circuits

/// `runPrune` end to end on a tiny model trained on the opener task: files, summary, means cache.
final class PrunePipelineTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("circuits-pipeline-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Trains a 1-layer d_model 16 model for a few steps and writes model, pairs and held-out tokens.
    func writeInputs() throws {
        let model = ModelConfig(vocab: 16, context: 12, dModel: 16, nLayer: 1, afrac: 0.5)
        let training = TrainingConfig(density: 1, steps: 60, batch: 16, seed: 3)
        let task = try OpenerTask(vocab: 16, context: 12)
        let stream = try TokenWindows(tokens: task.corpus(sequences: 256, seed: 1), length: 12, vocab: 16)
        let trainer = try Trainer(model: GPT(config: model, seed: 3), config: training)
        for step in 0..<training.steps {
            let batch = stream.batch(step: step, seed: 3, size: 16)
            try trainer.step(inputs: batch.inputs, targets: batch.targets, batch: 16, length: 12)
        }
        try Checkpoint(trainer: trainer).save(to: path("model.safetensors"))
        try TaskPairsFile.save([TaskData(task: "opener", train: task.pairs(count: 16, seed: 5), test: task.pairs(count: 8, seed: 6))],
                               tokenizerHash: nil, to: directory.appendingPathComponent("pairs.json"))
        let heldOut = task.corpus(sequences: 16, seed: 7).map { UInt16($0).littleEndian }
        try heldOut.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: directory.appendingPathComponent("heldout.bin"))
    }

    func request() -> PruneRequest {
        var request = PruneRequest(modelPath: path("model.safetensors"), pairsPath: path("pairs.json"))
        request.heldOutTokensPath = path("heldout.bin")
        request.meansPath = path("means.safetensors")
        request.meanWindows = 8
        request.target = 2
        request.settings.lambdas = [1e-3, 1e-2]
        request.settings.targets = [1e-6, 0.5]
        request.settings.pruning.steps = 20
        request.outputDirectory = path("out")
        request.workers = 2
        return request
    }

    func testRunPruneWritesCircuitAndFrontierAndReusesMeans() throws {
        try writeInputs()
        let outcomes = try runPrune(request())
        XCTAssertEqual(outcomes.count, 1)
        let outcome = outcomes[0]
        XCTAssertEqual(outcome.frontier.points.map(\.target), [1e-6, 0.5, 2], "the headline target joins the frontier")
        XCTAssertNil(outcome.frontier.point(at: 1e-6)?.circuit, "a task loss of 1e-6 is out of reach")

        let circuit = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: outcome.circuitPath))) as! [String: Any]
        XCTAssertEqual(circuit["task"] as? String, "opener")
        XCTAssertEqual(circuit["target"] as? Double, 2)
        XCTAssertEqual(circuit["reachable"] as? Bool, true)
        let kept = (circuit["locations"] as! [[String: Any]]).reduce(0) { $0 + ($1["kept"] as! [Any]).count }
        XCTAssertEqual(kept, circuit["node_count"] as? Int)
        let edges = (circuit["edges"] as! [[String: Any]]).reduce(0) { $0 + ($1["edges"] as! [Any]).count }
        XCTAssertEqual(edges, circuit["edge_count"] as? Int)
        XCTAssertLessThanOrEqual(circuit["reached_loss"] as! Double, 2)

        let frontier = try JSONDecoder().decode(FrontierDocument.self, from: Data(contentsOf: URL(fileURLWithPath: outcome.frontierPath)))
        XCTAssertEqual(frontier.points.map(\.reachable), [false, outcome.frontier.point(at: 0.5)?.circuit != nil, true])
        XCTAssertEqual(frontier.runs.map(\.lambda), outcome.frontier.runs.map(\.lambda))
        XCTAssertEqual(Array(frontier.runs.map(\.lambda).prefix(2)), [1e-3, 1e-2], "the grid first, then any λ past its ends")
        XCTAssertTrue(outcome.summary.contains("task opener") && outcome.summary.contains("1e-06: unreachable"), outcome.summary)

        // The means file now exists; a second run reads it and gives the same frontier.
        let means = try NodeMeansFile.read(path("means.safetensors"))
        XCTAssertEqual(means.sequences, 8)
        let again = try runPrune(request())
        XCTAssertEqual(again[0].frontier.runs.map(\.tau), outcome.frontier.runs.map(\.tau))
        XCTAssertEqual(again[0].circuit, outcome.circuit)

        // Means from the file alone, without the tokens.
        var fromFile = request()
        fromFile.heldOutTokensPath = nil
        fromFile.workers = 1
        XCTAssertEqual(try runPrune(fromFile)[0].circuit, outcome.circuit, "one worker gives the same result as two")
    }

    func testUnknownTaskAndMissingMeansAreClearErrors() throws {
        try writeInputs()
        var unknown = request()
        unknown.tasks = ["bracket_counting"]
        XCTAssertThrowsError(try runPrune(unknown)) { error in
            XCTAssertTrue("\(error)".contains("no task bracket_counting") && "\(error)".contains("opener"), "\(error)")
        }
        var noMeans = request()
        noMeans.heldOutTokensPath = nil
        noMeans.meansPath = nil
        XCTAssertThrowsError(try runPrune(noMeans))
        var badModel = request()
        badModel.modelPath = path("pairs.json")
        XCTAssertThrowsError(try runPrune(badModel)) { error in
            XCTAssertTrue("\(error)".contains("pairs.json"), "\(error)")
        }
    }
}
