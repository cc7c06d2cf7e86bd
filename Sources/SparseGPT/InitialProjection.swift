extension Trainer {
    /// Projects every matrix of the model to its target density (the embeddings to the embedding
    /// density), with the per-neuron floor, as the end of annealing would, but without an optimizer
    /// step: a randomly initialised model with a trained model's sparsity pattern statistics.
    public func projectToTargetDensities() {
        let scratch = ProjectionScratch(capacity: model.layout.tensors.map(\.count).max() ?? 1)
        for tensor in model.layout.tensors where tensor.isMatrix {
            project(tensor, density: tensor.isEmbedding ? config.resolvedEmbedDensity : config.density, scratch: scratch)
        }
    }

    /// Nonzero parameters of the model (matrices, embeddings and norm gains).
    public var nonzeroParameters: Int {
        let w = model.parameters.pointer
        var count = 0
        for i in 0..<model.parameters.count where w[i] != 0 { count += 1 }
        return count
    }
}
