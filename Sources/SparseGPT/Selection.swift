/// Top-k selection with the reference's tie rule: the k largest scores are kept, and ties at the
/// k-th value go to the lowest indices (the first k of a stable descending sort).

/// The k-th largest value (k >= 1) of `values[0..<n]`; reorders `values` (quickselect).
@inline(__always)
func kthLargest(_ values: UnsafeMutablePointer<Float>, _ n: Int, _ k: Int) -> Float {
    var lo = 0, hi = n - 1
    let target = k - 1                     // index in descending order
    while lo < hi {
        // median of three as pivot, descending partition
        let mid = lo + (hi - lo) >> 1
        var a = values[lo], b = values[mid], c = values[hi]
        if a < b { swap(&a, &b) }
        if b < c { swap(&b, &c) }
        if a < b { swap(&a, &b) }
        let pivot = b
        var i = lo, j = hi
        while i <= j {
            while values[i] > pivot { i += 1 }
            while values[j] < pivot { j -= 1 }
            if i <= j {
                let t = values[i]; values[i] = values[j]; values[j] = t
                i += 1; j -= 1
            }
        }
        if target <= j { hi = j } else if target >= i { lo = i } else { return values[target] }
    }
    return values[target]
}

/// Marks in `keep` (1 = kept) the k largest of `scores[0..<n]` (stride `stride`), ties to the lower index.
/// `scratch` holds n floats.
@inline(__always)
func selectTopK(_ scores: UnsafePointer<Float>, stride: Int = 1, _ n: Int, _ k: Int,
                keep: UnsafeMutablePointer<UInt8>, keepStride: Int = 1, scratch: UnsafeMutablePointer<Float>) {
    if k >= n {
        for i in 0..<n { keep[i * keepStride] = 1 }
        return
    }
    if k <= 0 {
        for i in 0..<n { keep[i * keepStride] = 0 }
        return
    }
    for i in 0..<n { scratch[i] = scores[i * stride] }
    let threshold = kthLargest(scratch, n, k)
    var above = 0
    for i in 0..<n where scores[i * stride] > threshold { above += 1 }
    var tiesLeft = k - above
    for i in 0..<n {
        let s = scores[i * stride]
        if s > threshold {
            keep[i * keepStride] = 1
        } else if s == threshold && tiesLeft > 0 {
            keep[i * keepStride] = 1
            tiesLeft -= 1
        } else {
            keep[i * keepStride] = 0
        }
    }
}

/// ceil(frac * n) in float64, as the reference counts kept entries.
@inline(__always)
func keptCount(_ frac: Double, _ n: Int) -> Int { Int((frac * Double(n)).rounded(.up)) }
