import Foundation

/// A task's loss over the A prompts of its pairs and over the B prompts apart, and the share of
/// prompts answered correctly, from the logit margins (correct − wrong) of the prompts in pair order.
/// A model that has learnt which continuation is common but not the context that decides it scores
/// near 0 on one side and far above chance (log 2) on the other.
public struct PromptSides: Equatable {
    public let lossA: Double
    public let lossB: Double
    public let accuracy: Double

    public init(margins: [Float]) {
        func loss(_ side: Int) -> Double {
            let values = stride(from: side, to: margins.count, by: 2).map { row -> Double in
                let z = Double(margins[row])  // −log σ(z), stable for either sign
                return z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z))
            }
            return values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
        }
        lossA = loss(0)
        lossB = loss(1)
        accuracy = margins.isEmpty ? 0 : Double(margins.filter { $0 > 0 }.count) / Double(margins.count)
    }
}
