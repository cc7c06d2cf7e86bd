/// exp on 8 lanes (Cephes single-precision polynomial, about 2 ulp), for the elementwise loops
/// (GELU, softmax, cross-entropy) where scalar expf calls dominate.
typealias Lanes = SIMD8<Float>

@inline(__always)
func expLanes(_ input: Lanes) -> Lanes {
    // clamp (pointwiseMin/Max are not inlined, and their call dominated GELU)
    var x = input
    let high = Lanes(repeating: 88.3), low = Lanes(repeating: -87.3)
    x.replace(with: high, where: x .> high)
    x.replace(with: low, where: x .< low)
    // n = round(x log2 e) by the 1.5 * 2^23 trick: integer lanes without a float-to-int conversion
    let magic = Lanes(repeating: 12_582_912)
    let shifted = x * 1.442_695_04 + magic
    let n = shifted - magic
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p = Lanes(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let y = p * (r * r) + r + 1
    let exponent = (unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return y * unsafeBitCast(exponent, to: Lanes.self)
}

@inline(__always) func loadLanes(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
@inline(__always) func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self) }

/// out[i] = exp(x[i] - shift) for i < count; returns their sum.
@inline(__always)
func expShifted(_ x: UnsafePointer<Float>, minus shift: Float, into out: UnsafeMutablePointer<Float>, count: Int) -> Float {
    var acc = Lanes(repeating: 0)
    var i = 0
    let s = Lanes(repeating: shift)
    while i + 8 <= count {
        let e = expLanes(loadLanes(x + i) - s)
        storeLanes(e, out + i)
        acc += e
        i += 8
    }
    var sum = acc.sum()
    while i < count {
        let e = expLanes(Lanes(repeating: x[i] - shift))[0]
        out[i] = e
        sum += e
        i += 1
    }
    return sum
}
