import Circuits
import Foundation
import PythonCode
import SparseGPT

/// The model kinds of the plan. Each receives its shard's context (parameters,
/// input artifact paths, progress and checkpoint callbacks, output directory)
/// and returns its output files and summary:
/// - prepare: BPE tokenizer, corpus token streams and task pairs → outputs
///   `tokenizer`, `train_tokens`, `held_out_tokens`, `tasks`, and `task_errors` (the tasks it
///   could not make pairs for, whose prune shards then fail at once);
/// - train: weight-sparse training from `prepare.*`, checkpoints every
///   `train.checkpoint_every` via `context.checkpoint`, continuing from
///   `context.resume` → outputs `checkpoint` and `training_curve` (see `TrainingCurve`), summary
///   `pretrain_loss`, `nonzero_weights`; for a random-init control only the initialisation
///   projected to the point's density (step 0, no curve);
/// - prune: the frontier of one (model, task) from `train.checkpoint` and
///   `prepare.*` → outputs `curve` (frontier document), `circuit` (the circuit at the
///   headline target) and `analysis` (its per-node `CircuitAnalysis`), summary `edges`, `nodes`,
///   `necessity_loss` and (when calibrated) `uncalibrated_necessity_loss` there (absent unless
///   reachable), `reachable` and `collapsed` (1 or 0).
enum ModelShards {

    static func prepare(_ context: ShardContext) throws -> ShardOutput {
        let data = try context.params.data.orThrow("data", context)
        let model = try context.params.model.orThrow("model", context)
        let tasks = try (context.params.tasks ?? []).map { try PythonTask.named($0) }
        let total = 2 + tasks.count
        let documents = try CorpusSource(argument: data.corpus, seed: UInt64(data.corpusSeed)).documents()
        let (tokenizer, reserved) = try BPETokenizer.trainServingTasks(on: documents.trainingText(bytes: BPETokenizer.defaultTrainingBytes),
                                                                       vocabularySize: data.vocabSize)
        let out = context.outputDirectory
        let tokenizerFile = out.appendingPathComponent("tokenizer.json")
        try tokenizer.save(to: tokenizerFile.path)
        context.progress(step: 1, total: total, loss: nil)

        let window = model.context + 1
        let tokens = documents.tokens(tokenizer: tokenizer, trainTokens: data.trainSequences * window,
                                      heldOutTokens: data.heldOutSequences * window)
        guard tokens.heldOut.count >= window, tokens.train.count >= window else {
            throw CorpusError.tooFewTokens(data.corpus, train: tokens.train.count, heldOut: tokens.heldOut.count, window: window)
        }
        let trainFile = out.appendingPathComponent("train_tokens.bin")
        let heldOutFile = out.appendingPathComponent("held_out_tokens.bin")
        try writeTokenFile(tokens.train, to: trainFile.path)
        try writeTokenFile(tokens.heldOut, to: heldOutFile.path)
        context.progress(step: 2, total: total, loss: nil)

        var pairs: [TaskData] = []
        var taskErrors: [String: String] = [:]
        for (index, task) in tasks.enumerated() {
            do {
                let splits = try task.makePairs(tokenizer: tokenizer, seed: UInt64(data.corpusSeed), trainPairs: data.trainPairs,
                                                testPairs: data.testPairs, maxLength: model.context)
                pairs.append(TaskData(task: task.name, train: try circuitPairs(splits.train), test: try circuitPairs(splits.test)))
            } catch where ShardRunner.isDeterministic(error) {
                // A task this tokenizer cannot serve fails only its own prune shards.
                taskErrors[task.name] = "\(error)"
            }
            context.progress(step: 3 + index, total: total, loss: nil)
        }
        if !tasks.isEmpty && pairs.isEmpty {
            throw PermanentShardError("shard \(context.job.shard): no task can be made under this tokenizer: "
                + taskErrors.keys.sorted().map { taskErrors[$0]! }.joined(separator: "; "))
        }
        let tasksFile = out.appendingPathComponent("tasks.json")
        try TaskPairsFile.save(pairs, tokenizerHash: tokenizer.sha256, to: tasksFile)
        let taskErrorsFile = out.appendingPathComponent("\(TaskErrorsFile.outputName).json")
        try TaskErrorsFile.save(taskErrors, to: taskErrorsFile)
        return ShardOutput(outputs: ["tokenizer": tokenizerFile, "train_tokens": trainFile,
                                     "held_out_tokens": heldOutFile, "tasks": tasksFile,
                                     TaskErrorsFile.outputName: taskErrorsFile],
                           summary: ["vocab_size": Double(tokenizer.vocabularySize), "train_tokens": Double(tokens.train.count),
                                     "held_out_tokens": Double(tokens.heldOut.count),
                                     "skipped_non_utf8_files": Double(documents.skippedNonUTF8.count),
                                     "reserved_candidate_pieces": Double(reserved.count)])
    }

    static func train(_ context: ShardContext) throws -> ShardOutput {
        let params = context.params
        let point = try params.point.orThrow("point", context)
        let section = try params.train.orThrow("train", context)
        let modelSection = try params.model.orThrow("model", context)
        let data = try params.data.orThrow("data", context)
        let model = ModelConfig(vocab: data.vocabSize, context: modelSection.context, dModel: point.dModel,
                                nLayer: modelSection.nLayer, dHead: modelSection.dHead, afrac: point.afrac)
        let training = TrainingConfig(density: point.density, embedDensity: modelSection.embedDensity,
                                      lr: section.learningRate, steps: section.steps, batch: section.batchSize,
                                      seed: UInt64(point.seed))
        try training.validate(for: model)

        let trainer: Trainer
        if let resume = context.resume {
            let checkpoint = try Checkpoint.load(from: resume.path)
            let saved = checkpoint.training
            guard checkpoint.model == model, saved.density == training.density, saved.steps == training.steps,
                  saved.batch == training.batch, saved.seed == training.seed,
                  abs(saved.lr - training.lr) <= 1e-9 * training.lr,
                  abs(saved.resolvedEmbedDensity - training.resolvedEmbedDensity) <= 1e-9 else {
                throw SweepError("shard \(context.job.shard): checkpoint \(resume.path) belongs to another model or training setup")
            }
            trainer = try checkpoint.makeTrainer(threads: context.threads)
        } else {
            trainer = try Trainer(model: GPT(config: model, seed: training.seed, threads: context.threads), config: training)
        }
        let tokenizerHash = try BPETokenizer.load(from: context.input("prepare.tokenizer").path).sha256
        let heldOutStream = try TokenWindows(tokens: readTokenFile(context.input("prepare.held_out_tokens").path),
                                             length: model.context, vocab: model.vocab, name: "prepare.held_out_tokens")
        let heldOutCount = min(data.heldOutSequences, max(1, heldOutStream.tokens.count / (model.context + 1)))
        let heldOut = heldOutStream.evenlySpacedWindows(count: heldOutCount)
        if point.isRandomInit {
            // The control: the initialisation at the trained model's sparsity, with no optimizer step.
            trainer.projectToTargetDensities()
            let final = context.outputDirectory.appendingPathComponent("checkpoint.bin")
            try Checkpoint(trainer: trainer, tokenizerHash: tokenizerHash).save(to: final.path)
            let loss = try heldOutLoss(model: trainer.model, windows: heldOut, count: heldOutCount, length: model.context)
            context.progress(step: 1, total: 1, loss: loss)
            return ShardOutput(outputs: ["checkpoint": final],
                               summary: ["pretrain_loss": loss, "nonzero_weights": Double(trainer.nonzeroParameters),
                                         "steps": 0, "resumed_from_step": 0])
        }
        let resumedFrom = trainer.step
        let windows = try TokenWindows(tokens: readTokenFile(context.input("prepare.train_tokens").path),
                                       length: model.context, vocab: model.vocab, name: "prepare.train_tokens")
        let run = try TrainingRun(trainer: trainer, data: windows, heldOut: heldOut)

        let every = max(1, Int((section.checkpointEvery * Double(training.steps)).rounded()))
        let reportEvery = max(1, training.steps / 200)
        var nonzero = 0
        var curve = TrainingCurve()
        while trainer.step < training.steps {
            let next = min(training.steps, (trainer.step / every + 1) * every)
            try run.run(until: next, reportEvery: reportEvery, evaluateEvery: TrainingCurve.evaluateEvery(steps: training.steps)) { progress in
                // The worker lends its idle slots' threads; the results do not depend on the count.
                let threads = context.currentThreads()
                if threads != trainer.model.threads { trainer.model.setThreads(threads) }
                nonzero = progress.nonzero
                curve.record(progress)
                context.progress(step: progress.step, total: progress.steps, loss: Double(progress.loss))
            }
            if trainer.step < training.steps {
                let file = context.outputDirectory.appendingPathComponent("checkpoint-\(trainer.step).bin")
                try Checkpoint(trainer: trainer, tokenizerHash: tokenizerHash).save(to: file.path)
                context.checkpoint(file: file, step: trainer.step)
            }
        }
        let loss = try heldOutLoss(model: trainer.model, windows: heldOut, count: heldOutCount, length: model.context)
        let final = context.outputDirectory.appendingPathComponent("checkpoint.bin")
        try Checkpoint(trainer: trainer, tokenizerHash: tokenizerHash).save(to: final.path)
        let curveFile = context.outputDirectory.appendingPathComponent("training_curve.csv")
        try Data(curve.csv().utf8).write(to: curveFile)
        return ShardOutput(outputs: ["checkpoint": final, "training_curve": curveFile],
                           summary: ["pretrain_loss": loss, "nonzero_weights": Double(nonzero),
                                     "steps": Double(training.steps), "resumed_from_step": Double(resumedFrom)])
    }

    static func prune(_ context: ShardContext) throws -> ShardOutput {
        let task = try context.params.task.orThrow("task", context)
        let section = try context.params.prune.orThrow("prune", context)
        let checkpointPath = try context.input("train.checkpoint").path
        let tokenizer = try BPETokenizer.load(from: try context.input("prepare.tokenizer").path)
        try TokenizerIdentity.check(tokenizer, file: "prepare.tokenizer",
                                    against: Checkpoint.load(from: checkpointPath), file: "train.checkpoint")
        var request = PruneRequest(modelPath: checkpointPath, pairsPath: try context.input("prepare.tasks").path)
        request.tasks = [task]
        request.heldOutTokensPath = try context.input("prepare.held_out_tokens").path
        request.target = Float(section.headlineTarget)
        request.settings.lambdas = section.lambdas.map(Float.init)
        request.settings.targets = section.targetLosses.map(Float.init)
        request.settings.pruning.steps = section.steps
        request.settings.pruning.learningRate = Float(section.learningRate)
        request.settings.pruning.batchPairs = section.batchSize
        request.settings.bisection = section.bisection ?? .trainedMask
        request.settings.calibration = section.calibration ?? request.settings.calibration
        request.settings.tauInitializations = section.tauInitializations ?? request.settings.tauInitializations
        request.settings.pruning.tauNoise = section.tauNoise.map(Float.init) ?? request.settings.pruning.tauNoise
        request.settings.lambdaExtensions = section.lambdaExtensions ?? request.settings.lambdaExtensions
        request.modelID = context.params.point?.name
        request.tokenText = { tokenizer.display($0) }
        request.outputDirectory = context.outputDirectory.appendingPathComponent("circuits").path
        // Written by the pruner and read back by the circuit's analysis.
        request.meansPath = context.outputDirectory.appendingPathComponent("node_means.safetensors").path
        // The worker lends its idle slots' threads, and takes them back.
        request.workers = context.threads
        request.currentWorkers = { context.currentThreads() }
        // The pruner reports every 100 steps of each λ run; extensions past the grid usually go one way.
        let total = max(1, (section.lambdas.count + request.settings.lambdaExtensions) * (section.steps / 100))
        var reports = 0
        let outcomes = try runPrune(request) { line in
            reports += 1
            let loss = line.components(separatedBy: "task loss ").last.flatMap { Double($0.prefix { $0 != "," }) }
            context.progress(step: min(reports, total), total: total, loss: loss)
        }
        context.progress(step: total, total: total, loss: nil)
        guard let outcome = outcomes.first else {
            throw SweepError("shard \(context.job.shard): the pruner returned no frontier for \(task)")
        }
        let circuit = outcome.circuit
        var summary: [String: Double] = ["full_loss": Double(circuit.fullLoss), "reachable": circuit.reachable ? 1 : 0,
                                         "collapsed": circuit.status == .collapsed ? 1 : 0, "target": section.headlineTarget]
        if circuit.reachable, let edges = circuit.edgeCount, let nodes = circuit.nodeCount {
            summary["edges"] = Double(edges)
            summary["nodes"] = Double(nodes)
            summary["necessity_loss"] = circuit.necessityLoss.map(Double.init)
            summary["uncalibrated_necessity_loss"] = circuit.uncalibratedNecessityLoss.map(Double.init)
        }
        let analysis = try analyseCircuit(circuit, request: request, context: context)
        return ShardOutput(outputs: ["curve": URL(fileURLWithPath: outcome.frontierPath),
                                     "circuit": URL(fileURLWithPath: outcome.circuitPath), "analysis": analysis],
                           summary: summary)
    }

    /// The per-node analysis of the circuit at the headline target (`CircuitAnalysis`), with token
    /// text from the sweep's tokenizer, written as `<task>.analysis.json`.
    static func analyseCircuit(_ circuit: CircuitDocument, request: PruneRequest, context: ShardContext) throws -> URL {
        let tokenizer = try BPETokenizer.load(from: context.input("prepare.tokenizer").path)
        let session = try PruneSession(modelPath: request.modelPath, workers: request.currentWorkers?() ?? request.workers)
        try session.setMeans(NodeMeansFile.read(request.meansPath!).means)
        guard let data = try TaskPairsFile.load(URL(fileURLWithPath: request.pairsPath!)).first(where: { $0.task == circuit.task }) else {
            throw SweepError("shard \(context.job.shard): prepare.tasks has no task \(circuit.task)")
        }
        let analysis = try CircuitAnalysis.analyse(circuit: circuit, session: session, data: data,
                                                   heldOut: readTokenFile(request.heldOutTokensPath!)) { tokenizer.decodeString([$0]) }
        let file = context.outputDirectory.appendingPathComponent("\(circuit.task).analysis.json")
        try analysis.jsonData().write(to: file)
        return file
    }
}

/// The generator's pairs in the pruner's type (the same padded layout).
private func circuitPairs(_ pairs: PythonCode.TaskPairs) throws -> Circuits.TaskPairs {
    try Circuits.TaskPairs(width: pairs.width, prompts: pairs.prompts, lengths: pairs.lengths, candidates: pairs.candidates)
}

extension Optional {
    func orThrow(_ section: String, _ context: ShardContext) throws -> Wrapped {
        guard let value = self else {
            throw PermanentShardError("shard \(context.job.shard): its parameters lack the \(section) section")
        }
        return value
    }
}
