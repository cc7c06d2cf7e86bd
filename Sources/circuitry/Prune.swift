import ArgumentParser
import Circuits
import Foundation
import PythonCode
import SparseGPT
import Sweep

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prune a trained model to the smallest circuit per task and write the circuits as JSON.")

    @Option(help: "Trained model checkpoint (.safetensors).")
    var model: String

    @Option(help: "Task pairs file, as `circuitry tasks export` writes it.")
    var pairs: String?

    @Option(help: "Tokenizer JSON: generate the task pairs and held-out tokens instead of reading files; also names the candidate tokens in the circuit files.")
    var tokenizer: String?

    @Option(help: "With --tokenizer: \"synthetic\" or a directory of .py files for the held-out tokens.")
    var corpus = "synthetic"

    @Option(help: "With --tokenizer: corpus seed.")
    var corpusSeed: UInt64 = 0

    @Option(help: "With --tokenizer: task seed.")
    var taskSeed: UInt64 = 0

    @Option(help: "With --tokenizer: train pairs per task.")
    var trainPairs = 2048

    @Option(help: "With --tokenizer: test pairs per task.")
    var testPairs = 512

    @Option(help: "Task to prune (repeatable).")
    var task: [String] = []

    @Flag(help: "Prune every task.")
    var allTasks = false

    @Option(help: "Held-out corpus tokens (flat uint16) to take the node means over.")
    var heldOutTokens: String?

    @Option(help: "Node means file: reused when it matches the model and tokens, else written.")
    var means: String?

    @Option(help: "Held-out windows the node means are taken over.")
    var meanWindows = 256

    @Option(help: "Target task loss of the reported circuit.")
    var target: Float = 0.15

    @Option(parsing: .upToNextOption, help: "Sparsity penalties λ of the frontier.")
    var lambdas: [Float] = FrontierSettings().lambdas

    @Option(help: "λ tried past each end of --lambdas (×3 or ÷3 each time) while that end gives the smallest circuit at some target.")
    var lambdaExtensions = FrontierSettings().lambdaExtensions

    @Option(parsing: .upToNextOption, help: "Target task losses of the frontier.")
    var targets: [Float] = FrontierSettings().targets

    @Option(help: "Mask-training steps per λ.")
    var steps = PruningSettings().steps

    @Option(help: "Pairs per mask-training step.")
    var batchPairs = PruningSettings().batchPairs

    @Option(help: "Adam learning rate on τ.")
    var lr = PruningSettings().learningRate

    @Option(help: "Where bisection over k starts: trained_mask (the nodes with τ > 0, when they reach the target) or all_nodes (k = N first, the reference's convention).")
    var bisection = BisectionStart.trainedMask

    @Flag(inversion: .prefixedNo, help: "Score each candidate circuit after fitting a scale and shift of its candidate logits on the train pairs (--no-calibration: the reference's uncalibrated convention).")
    var calibration = FrontierSettings().calibration

    @Option(help: "τ initialisations per λ; the smallest circuit of all is kept.")
    var tauInitializations = FrontierSettings().tauInitializations

    @Option(help: "Standard deviation of the Gaussian noise on the initial τ of the first initialisation.")
    var tauNoise = PruningSettings().tauNoise

    @Option(help: "How the circuit files name the model (default: the checkpoint path).")
    var modelId: String?

    @Option(help: "Seed of batch sampling and τ noise.")
    var seed: UInt64 = 0

    @Option(help: "Threads, each with its own model copy, that share every evaluation's prompts.")
    var workers = 2

    @Option(help: "Directory for <task>.circuit.json and <task>.frontier.json.")
    var out = "circuits"

    func validate() throws {
        guard allTasks != !task.isEmpty else { throw ValidationError("give --task NAME (repeatable) or --all-tasks") }
        guard (pairs == nil) != (tokenizer == nil) else { throw ValidationError("give --pairs FILE or --tokenizer FILE") }
        guard tokenizer != nil || heldOutTokens != nil || means != nil else {
            throw ValidationError("give --held-out-tokens FILE or --means FILE (or --tokenizer to generate the tokens)")
        }
    }

    func run() throws {
        var request = PruneRequest(modelPath: model, pairsPath: pairs)
        request.tasks = allTasks ? [] : task
        request.heldOutTokensPath = heldOutTokens
        if let pairs { try TokenizerIdentity.check(pairsFile: pairs, against: try Checkpoint.load(from: model), file: model) }
        if let tokenizer {
            let bpe = try BPETokenizer.load(from: tokenizer)
            request.tokenText = { bpe.display($0) }
            let checkpoint = try Checkpoint.load(from: model)
            try TokenizerIdentity.check(bpe, file: tokenizer, against: checkpoint, file: model)
            let context = checkpoint.model.context
            let chosen = allTasks ? PythonTask.all : try task.map(PythonTask.named)
            request.pairs = try chosen.map { pythonTask in
                let splits = try pythonTask.makePairs(tokenizer: bpe, seed: taskSeed, trainPairs: trainPairs,
                                                      testPairs: testPairs, maxLength: context)
                let convert = { (p: PythonCode.TaskPairs) in
                    try Circuits.TaskPairs(width: p.width, prompts: p.prompts, lengths: p.lengths, candidates: p.candidates)
                }
                return TaskData(task: pythonTask.name, train: try convert(splits.train), test: try convert(splits.test))
            }
            if heldOutTokens == nil {
                let tokens = try CorpusSource(argument: corpus, seed: corpusSeed)
                    .tokens(tokenizer: bpe, trainTokens: 0, heldOutTokens: meanWindows * (context + 1))
                request.heldOutTokens = tokens.heldOut.map(Int32.init)
            }
        }
        request.meansPath = means
        request.meanWindows = meanWindows
        request.target = target
        request.settings.lambdas = lambdas
        request.settings.lambdaExtensions = lambdaExtensions
        request.settings.targets = targets
        request.settings.pruning.steps = steps
        request.settings.pruning.batchPairs = batchPairs
        request.settings.pruning.learningRate = lr
        request.settings.pruning.seed = seed
        request.settings.pruning.tauNoise = tauNoise
        request.settings.bisection = bisection
        request.settings.calibration = calibration
        request.settings.tauInitializations = tauInitializations
        request.modelID = modelId
        request.workers = workers
        request.outputDirectory = out
        let outcomes = try runPrune(request) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        for outcome in outcomes { print(outcome.summary) }
    }
}

extension BisectionStart: ExpressibleByArgument {}
