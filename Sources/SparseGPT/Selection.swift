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

/// The k-th largest (1 <= k <= n) of n keys, by radix select over bytes, most significant first.
@inline(__always)
func kthLargestKey(_ keys: UnsafePointer<UInt32>, _ n: Int, _ k: Int, histogram: UnsafeMutablePointer<Int32>,
                   buffer: UnsafeMutablePointer<UInt32>) -> UInt32 {
    var source = keys, count = n, rank = Int32(k), prefix: UInt32 = 0
    var shift: UInt32 = 24
    while true {
        histogram.update(repeating: 0, count: 256)
        for i in 0..<count { histogram[Int((source[i] >> shift) & 0xff)] += 1 }
        var bucket = 255
        while histogram[bucket] < rank {
            rank -= histogram[bucket]
            bucket -= 1
        }
        prefix |= UInt32(bucket) << shift
        if shift == 0 { return prefix }
        // keep only the keys in the chosen bucket (branch-free compaction)
        var m = 0
        let b = UInt32(bucket)
        for i in 0..<count {
            let v = source[i]
            buffer[m] = v
            m += ((v >> shift) & 0xff) == b ? 1 : 0
        }
        if m == 1 { return buffer[0] }
        source = UnsafePointer(buffer)
        count = m
        shift -= 8
    }
}

/// Marks in `keep` (1 = kept, stride `keepStride`) the k largest of `keys[0..<n]`, ties to the lower index.
@inline(__always)
func selectTopKeys(_ keys: UnsafePointer<UInt32>, _ n: Int, _ k: Int, keep: UnsafeMutablePointer<UInt8>, keepStride: Int = 1,
                   histogram: UnsafeMutablePointer<Int32>, buffer: UnsafeMutablePointer<UInt32>) {
    if k >= n || k <= 0 {
        let value: UInt8 = k <= 0 ? 0 : 1
        for i in 0..<n { keep[i * keepStride] = value }
        return
    }
    let threshold = kthLargestKey(keys, n, k, histogram: histogram, buffer: buffer)
    var above = 0, atLeast = 0
    for i in 0..<n {
        above += keys[i] > threshold ? 1 : 0
        atLeast += keys[i] >= threshold ? 1 : 0
    }
    if atLeast == k {            // no surplus ties at the threshold: a plain comparison decides
        for i in 0..<n { keep[i * keepStride] = keys[i] >= threshold ? 1 : 0 }
        return
    }
    var ties = k - above
    for i in 0..<n {
        let key = keys[i]
        if key > threshold {
            keep[i * keepStride] = 1
        } else if key == threshold && ties > 0 {
            keep[i * keepStride] = 1
            ties -= 1
        } else {
            keep[i * keepStride] = 0
        }
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
