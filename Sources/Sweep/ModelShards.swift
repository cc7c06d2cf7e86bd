import Foundation

/// The model kinds of the plan. Each receives its shard's context (parameters,
/// input artifact paths, progress and checkpoint callbacks, output directory)
/// and returns its output files and summary:
/// - prepare: corpus sample, BPE tokenizer and task pairs → outputs `tokenizer`, `tasks`;
/// - train: weight-sparse training from `prepare.*`, checkpoints every
///   `train.checkpointEvery` via `context.checkpoint`, continuing from
///   `context.resume` → output `checkpoint`, summary `pretrain_loss`;
/// - prune: the frontier of one (model, task) from `train.checkpoint` and
///   `prepare.*` → output `curve`, summary `edges` at the headline target.
enum ModelShards {
    static func prepare(_ context: ShardContext) throws -> ShardOutput {
        throw unavailable(context, needs: "the PythonCode corpus and tokenizer")
    }

    static func train(_ context: ShardContext) throws -> ShardOutput {
        throw unavailable(context, needs: "the SparseGPT trainer")
    }

    static func prune(_ context: ShardContext) throws -> ShardOutput {
        throw unavailable(context, needs: "the Circuits pruner")
    }

    private static func unavailable(_ context: ShardContext, needs: String) -> SweepError {
        SweepError("shard \(context.job.shard): the \(context.job.kind) kind needs \(needs), which this build does not include yet; run a sweep file with a simulate: section meanwhile")
    }
}
