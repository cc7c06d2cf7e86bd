import Foundation

/// A task's loss over all its prompts, over the A prompts of its pairs and over the B prompts apart, and the share of
/// prompts answered correctly, from the logit margins (correct − wrong) of the prompts in pair order.
/// A model that has learnt which continuation is common but not the context that decides it scores
/// near 0 on one side and far above chance (log 2) on the other.
public struct PromptSides: Equatable {
    /// The task loss: −log σ(margin) averaged over every prompt.
    public let loss: Double
    public let lossA: Double
    public let lossB: Double
    public let accuracy: Double

    public init(margins: [Float]) {
        let losses = margins.map { CalibrationObjective.softplusNegative(Double($0)) }
        func mean(_ rows: StrideTo<Int>) -> Double {
            let values = rows.map { losses[$0] }
            return values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
        }
        loss = mean(stride(from: 0, to: losses.count, by: 1))
        lossA = mean(stride(from: 0, to: losses.count, by: 2))
        lossB = mean(stride(from: 1, to: losses.count, by: 2))
        accuracy = margins.isEmpty ? 0 : Double(margins.filter { $0 > 0 }.count) / Double(margins.count)
    }
}
