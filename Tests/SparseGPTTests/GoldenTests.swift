import Foundation
import XCTest
@testable import SparseGPT

/// Matches the engine against the PyTorch reference's golden tensors (tolerances of golden/README.md).
final class GoldenTests: XCTestCase {
    static var train: SafeTensorsFile!
    static var prune: SafeTensorsFile!

    override class func setUp() {
        train = try! SafeTensorsFile.read(fixture("train.safetensors"))
        prune = try! SafeTensorsFile.read(fixture("prune.safetensors"))
    }

    private func goldenModel() throws -> (GPT, TrainingConfig, [Int32], [Int32]) {
        let g = Self.train!
        let json = Data(g.metadata["config"]!.utf8)
        let model = try JSONDecoder().decode(ModelConfig.self, from: json)
        let training = try JSONDecoder().decode(TrainingConfig.self, from: json)
        let gpt = try GPT(config: model, seed: 0)
        for t in gpt.layout.tensors { try gpt.setTensor(t.name, g.tensors["init." + t.name]!.floats) }
        return (gpt, training, g.tensors["x"]!.ints, g.tensors["y"]!.ints)
    }

    func testGoldenForwardLogitsAndLoss() throws {
        let (gpt, training, x, y) = try goldenModel()
        try gpt.forward(tokens: x, batch: training.batch, length: gpt.config.context)
        let loss = try gpt.crossEntropy(targets: y)
        assertClose(gpt.logits.array, Self.train.tensors["fwd.logits"]!.floats, rtol: 1e-4, atol: 1e-6, "fwd.logits")
        assertClose([loss], Self.train.tensors["fwd.loss"]!.floats, rtol: 1e-4, atol: 1e-6, "fwd.loss")
    }

    func testGoldenGradients() throws {
        let (gpt, training, x, y) = try goldenModel()
        try gpt.forward(tokens: x, batch: training.batch, length: gpt.config.context)
        _ = try gpt.crossEntropy(targets: y)
        gpt.backwardFromLoss()
        for t in gpt.layout.tensors {
            assertClose(gpt.gradient(t.name)!, Self.train.tensors["grad." + t.name]!.floats, rtol: 1e-3, atol: 1e-5, "grad." + t.name)
        }
    }

    func testGoldenTrainingStepsWeightsAndMoments() throws {
        let (gpt, training, x, y) = try goldenModel()
        let trainer = try Trainer(model: gpt, config: training)
        let r1 = try trainer.step(inputs: x, targets: y, batch: training.batch, length: gpt.config.context)
        let rms = Self.train.tensors["grad_rms"]!.floats[0]
        XCTAssertEqual(r1.gradRMS, Double(rms), accuracy: 1e-3 * Double(rms))
        for t in gpt.layout.tensors {
            assertClose(gpt.gradient(t.name)!, Self.train.tensors["gradn." + t.name]!.floats, rtol: 1e-3, atol: 1e-5 / rms, "gradn." + t.name)
            let expected = Self.train.tensors["step1.w." + t.name]!.floats
            let actual = gpt.tensor(t.name)!
            assertClose(actual, expected, rtol: 1e-4, atol: 1e-6, "step1.w." + t.name)
            XCTAssertEqual(actual.map { $0 != 0 }, expected.map { $0 != 0 }, "nonzero pattern of step1.w.\(t.name)")
        }
        for _ in 2...3 { try trainer.step(inputs: x, targets: y, batch: training.batch, length: gpt.config.context) }
        let schedule = try JSONSerialization.jsonObject(with: Data(Self.train.metadata["schedule"]!.utf8)) as! [[String: Any]]
        let nonzero = schedule[2]["nonzero"] as! [String: Int]
        for t in gpt.layout.tensors {
            let range = t.offset..<(t.offset + t.count)
            let expected = Self.train.tensors["step3.w." + t.name]!.floats
            let actual = gpt.tensor(t.name)!
            assertClose(actual, expected, rtol: 1e-4, atol: 1e-6, "step3.w." + t.name)
            XCTAssertEqual(actual.map { $0 != 0 }, expected.map { $0 != 0 }, "nonzero pattern of step3.w.\(t.name)")
            assertClose(Array(trainer.adamM.array[range]), Self.train.tensors["step3.m." + t.name]!.floats, rtol: 1e-3, atol: 1e-5, "step3.m." + t.name)
            assertClose(Array(trainer.adamV.array[range]), Self.train.tensors["step3.v." + t.name]!.floats, rtol: 1e-3, atol: 1e-5, "step3.v." + t.name)
            if let n = nonzero[t.name] { XCTAssertEqual(actual.filter { $0 != 0 }.count, n, "nonzeros of \(t.name) after step 3") }
        }
    }

    func testGoldenScheduleMatchesReference() throws {
        let training = try JSONDecoder().decode(TrainingConfig.self, from: Data(Self.train.metadata["config"]!.utf8))
        let schedule = try JSONSerialization.jsonObject(with: Data(Self.train.metadata["schedule"]!.utf8)) as! [[String: Any]]
        for (t, entry) in schedule.enumerated() {
            let s = training.schedule(step: t)
            XCTAssertEqual(s.lr, entry["lr"] as! Double, accuracy: 1e-15)
            XCTAssertEqual(s.density, entry["density"] as! Double, accuracy: 1e-15)
            XCTAssertEqual(s.embedDensity, entry["embed_density"] as! Double, accuracy: 1e-15)
        }
    }

    private func pruneModel() throws -> GPT {
        let p = Self.prune!
        let config = try JSONDecoder().decode(ModelConfig.self, from: Data(p.metadata["config"]!.utf8))
        let gpt = try GPT(config: config, seed: 0)
        for t in gpt.layout.tensors { try gpt.setTensor(t.name, p.tensors["model." + t.name]!.floats) }
        return gpt
    }

    func testGoldenNodeLayoutAndMeans() throws {
        let gpt = try pruneModel()
        let nodes = try JSONSerialization.jsonObject(with: Data(Self.prune.metadata["nodes"]!.utf8)) as! [[Any]]
        XCTAssertEqual(gpt.nodes.locations.map(\.name), nodes.map { $0[0] as! String })
        XCTAssertEqual(gpt.nodes.locations.map(\.size), nodes.map { $0[1] as! Int })
        let tokens = Self.prune.tensors["mean_tokens"]!
        let means = try gpt.nodeMeans(sequences: tokens.ints, count: tokens.shape[0], length: tokens.shape[1])
        assertClose(means, Self.prune.tensors["means"]!.floats, rtol: 1e-4, atol: 1e-6, "means")
    }

    func testGoldenAblatedTaskLossAndMaskGradient() throws {
        let gpt = try pruneModel()
        let p = Self.prune!
        let tau = p.tensors["tau0"]!.floats
        let mask = tau.map { $0 > 0 ? Float(1) : 0 }
        let prompts = p.tensors["prompts"]!, cand = p.tensors["cand"]!.ints
        try gpt.forward(tokens: prompts.ints, batch: prompts.shape[0], length: prompts.shape[1],
                        ablation: NodeAblation(mask: mask, mean: p.tensors["means"]!.floats))
        let pairs = (0..<prompts.shape[0]).map { (correct: cand[2 * $0], wrong: cand[2 * $0 + 1]) }
        let result = try gpt.taskLoss(lengths: p.tensors["lengths"]!.ints, candidates: pairs)
        let lambda: Float = 1e-3
        let objective = result.loss + lambda * mask.reduce(0, +)
        assertClose([result.loss], p.tensors["step1.task_loss"]!.floats, rtol: 1e-4, atol: 1e-6, "step1.task_loss")
        assertClose([objective], p.tensors["step1.objective"]!.floats, rtol: 1e-4, atol: 1e-6, "step1.objective")
        try gpt.backward(dLogits: result.dLogits, parameterGradients: false)
        let tauGrad = zip(gpt.nodeMaskGradient, tau).map { g, t -> Float in
            let s = 1 / (1 + expf(-t))
            return (g + lambda) * s * (1 - s)
        }
        assertClose(tauGrad, p.tensors["step1.tau_grad"]!.floats, rtol: 1e-3, atol: 1e-5, "step1.tau_grad")
    }
}
