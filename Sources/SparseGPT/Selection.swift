/// Top-k selection with the reference's tie rule: the k largest scores are kept, and ties at the
/// k-th value go to the lowest indices (the first k of a stable descending sort).
///
/// Scores are non-negative floats (|x|, |w|, or +infinity for forced entries) handled as their bit
/// patterns, which order like the floats; the k-th largest is found by MSB-first radix select.

/// The sort key of |x|: the bit pattern without the sign (so -0 and +0 tie, as |x| does).
@inline(__always)
func magnitudeKey(_ x: Float) -> UInt32 { x.bitPattern & 0x7fff_ffff }

/// Scratch space for selecting among up to `capacity` keys.
final class SelectionScratch {
    let capacity: Int
    let keys: UnsafeMutablePointer<UInt32>
    let buffer: UnsafeMutablePointer<UInt32>
    let histogram: UnsafeMutablePointer<Int32>
    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        keys = .allocate(capacity: self.capacity)
        buffer = .allocate(capacity: self.capacity)
        histogram = .allocate(capacity: 256)
    }
    deinit {
        keys.deallocate(); buffer.deallocate(); histogram.deallocate()
    }
}

/// Marks in `keep` (1 = kept, stride `keepStride`) the k largest of `keys[0..<n]`, ties to the lower index.
/// Radix select over bytes, most significant first, stopping as soon as a bucket boundary separates
/// exactly k keys (the common case); otherwise the exact k-th key is found and ties are resolved by index.
@inline(__always)
func selectTopKeys(_ keys: UnsafePointer<UInt32>, _ n: Int, _ k: Int, keep: UnsafeMutablePointer<UInt8>, keepStride: Int = 1,
                   histogram: UnsafeMutablePointer<Int32>, buffer: UnsafeMutablePointer<UInt32>) {
    if k >= n || k <= 0 {
        let value: UInt8 = k <= 0 ? 0 : 1
        for i in 0..<n { keep[i * keepStride] = value }
        return
    }
    var source = keys, count = n, rank = Int32(k), prefix: UInt32 = 0
    var shift: UInt32 = 24
    var threshold: UInt32
    var separated = false
    while true {
        histogram.update(repeating: 0, count: 256)
        var top: UInt32 = 0
        for i in 0..<count {
            let byte = (source[i] &>> shift) & 0xff
            histogram[Int(byte)] &+= 1
            top = max(top, byte)
        }
        var bucket = Int(top)             // the walk down starts at the highest occupied bucket
        while histogram[bucket] < rank {
            rank &-= histogram[bucket]
            bucket &-= 1
        }
        prefix |= UInt32(bucket) &<< shift
        if histogram[bucket] == rank {          // keys >= prefix are exactly the k largest
            threshold = prefix
            separated = true
            break
        }
        if shift == 0 {                         // prefix is the k-th largest key, with surplus ties
            threshold = prefix
            break
        }
        // keep only the keys of the chosen bucket (branch-free compaction)
        var m = 0
        let b = UInt32(bucket)
        for i in 0..<count {
            let v = source[i]
            buffer[m] = v
            m &+= Int(truncatingIfNeeded: (((v &>> shift) & 0xff) == b) ? 1 as UInt8 : 0)
        }
        source = UnsafePointer(buffer)
        count = m
        shift &-= 8
    }
    if separated {
        for i in 0..<n { keep[i * keepStride] = keys[i] >= threshold ? 1 : 0 }
        return
    }
    var above = 0
    for i in 0..<n { above &+= keys[i] > threshold ? 1 : 0 }
    keepAboveAndFirstTies(keys, n, threshold: threshold, ties: k - above, keep: keep, keepStride: keepStride)
}

/// Same selection as `selectTopKeys` (keys below 2^31, as magnitude keys are) by counting passes
/// around a guess: `hint` (the threshold of a similar row, e.g. the previous row of the same site)
/// is tried first; if it does not split off exactly k keys, the bracket around the k-th largest key
/// is found by doubling steps from it and then halved until a probe has exactly k keys at least it
/// or the bracket is one key wide (the k-th largest, ties to the lower indices). Each pass is a
/// branch-free count the compiler vectorizes; with a good hint a row takes a few passes. `hint` is
/// updated to this row's threshold. The result does not depend on the hint.
@inline(__always)
func selectTopKeysNear(_ keys: UnsafePointer<UInt32>, _ n: Int, _ k: Int, keep: UnsafeMutablePointer<UInt8>,
                       hint: inout UInt32) {
    if k >= n || k <= 0 {
        keep.update(repeating: k <= 0 ? 0 : 1, count: n)
        return
    }
    // For keys below 2^31 and any c <= 2^31: key >= c exactly when (c - 1) - key, wrapped, has its top
    // bit set: plain arithmetic, so the counting loop vectorizes without branches.
    @inline(__always) func atLeast(_ key: UInt32, _ c: UInt32) -> UInt32 { ((c &- 1) &- key) >> 31 }
    @inline(__always) func countAtLeast(_ c: UInt32) -> Int {
        var count: UInt32 = 0
        for i in 0..<n { count &+= atLeast(keys[i], c) }
        return Int(count)
    }
    @inline(__always) func keepAtLeast(_ c: UInt32) {
        for i in 0..<n { keep[i] = UInt8(truncatingIfNeeded: atLeast(keys[i], c)) }
        hint = c
    }
    let top: UInt32 = 1 << 31                   // count(keys >= top) = 0 < k; count(keys >= 0) = n > k
    // bracket: count(keys >= lo) > k > count(keys >= hi)
    var lo: UInt32 = 0, hi: UInt32 = top, countHi = 0
    let first = min(max(hint, 1), top - 1)
    let count = countAtLeast(first)
    if count == k { keepAtLeast(first); return }
    var step: UInt32 = 1 << 20                  // about 1/8 of a binade
    if count > k {
        lo = first
        while true {
            let probe = lo < top - step ? lo + step : top
            if probe == top { break }
            let c = countAtLeast(probe)
            if c == k { keepAtLeast(probe); return }
            if c < k { hi = probe; countHi = c; break }
            lo = probe
            step = step < 1 << 29 ? step << 1 : step
        }
    } else {
        hi = first
        countHi = count
        while true {
            guard hi > step else { break }
            let probe = hi - step
            let c = countAtLeast(probe)
            if c == k { keepAtLeast(probe); return }
            if c > k { lo = probe; break }
            hi = probe
            countHi = c
            step = step < 1 << 29 ? step << 1 : step
        }
    }
    while hi - lo > 1 {
        let probe = lo + (hi - lo) / 2
        let c = countAtLeast(probe)
        if c == k { keepAtLeast(probe); return }
        if c > k { lo = probe } else { hi = probe; countHi = c }
    }
    // lo is the k-th largest key, with surplus ties: the first k - countHi of them are kept
    hint = lo
    keepAboveAndFirstTies(keys, n, threshold: lo, ties: k - countHi, keep: keep)
}

/// Keeps the keys above `threshold` and the first `ties` keys equal to it (the reference's tie rule).
@inline(__always)
func keepAboveAndFirstTies(_ keys: UnsafePointer<UInt32>, _ n: Int, threshold: UInt32, ties: Int,
                           keep: UnsafeMutablePointer<UInt8>, keepStride: Int = 1) {
    var seen = 0
    for i in 0..<n {
        let key = keys[i]
        let isTie = key == threshold ? 1 : 0
        let take = key > threshold || (isTie == 1 && seen < ties)
        seen &+= isTie
        keep[i * keepStride] = take ? 1 : 0
    }
}

/// Marks the k largest of the non-negative `scores[0..<n]` (stride `stride`), ties to the lower index.
func selectTopK(_ scores: UnsafePointer<Float>, stride: Int = 1, _ n: Int, _ k: Int,
                keep: UnsafeMutablePointer<UInt8>, keepStride: Int = 1, scratch: SelectionScratch) {
    precondition(n <= scratch.capacity)
    for i in 0..<n { scratch.keys[i] = magnitudeKey(scores[i * stride]) }
    selectTopKeys(scratch.keys, n, k, keep: keep, keepStride: keepStride, histogram: scratch.histogram, buffer: scratch.buffer)
}

/// ceil(frac * n) in float64, as the reference counts kept entries.
@inline(__always)
func keptCount(_ frac: Double, _ n: Int) -> Int { Int((frac * Double(n)).rounded(.up)) }
