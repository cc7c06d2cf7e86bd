import SparseGPT

/// A frozen model whose nodes can be mean-ablated: at every node location the value
/// becomes m·x + (1 − m)·mean, after AbsTopK. Only the masks change during pruning.
public protocol AblatableModel: AnyObject {
    var nodeLayout: NodeLayout { get }

    /// The task loss under the ablation `masks`/`means`
    /// (global node order). With `maskGradient`, also d loss / d m per node; the weights get no
    /// gradient.
    func taskLoss(_ pairs: TaskPairs, masks: [Float], means: [Float], maskGradient: Bool) throws -> (loss: Float, maskGradient: [Float]?)

    /// Per prompt, the correct-minus-wrong candidate logit difference under the same ablation:
    /// the task loss is the mean of softplus(−margin). Calibration (`LogitCalibration`) needs them.
    func logitMargins(_ pairs: TaskPairs, masks: [Float], means: [Float]) throws -> [Float]
}
