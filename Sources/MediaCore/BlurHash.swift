import Foundation

/// BlurHash (https://blurha.sh): a short string that decodes to a blurred placeholder of an image.
public enum BlurHash {
    /// Encodes 8-bit RGB pixels (row-major, 3 bytes per pixel) with `x` by `y` components (1...9 each).
    public static func encode(rgb pixels: [UInt8], width: Int, height: Int, x: Int = 4, y: Int = 3) -> String {
        precondition((1...9).contains(x) && (1...9).contains(y) && pixels.count >= width * height * 3)
        let linear = pixels.map { srgbToLinear($0) }
        var factors: [(Double, Double, Double)] = []
        for j in 0..<y {
            for i in 0..<x {
                let normalisation: Double = (i == 0 && j == 0) ? 1 : 2
                var r = 0.0
                var g = 0.0
                var b = 0.0
                for py in 0..<height {
                    let cy = cos(Double.pi * Double(j) * Double(py) / Double(height))
                    for px in 0..<width {
                        let basis = normalisation * cos(Double.pi * Double(i) * Double(px) / Double(width)) * cy
                        let offset = (py * width + px) * 3
                        r += basis * linear[offset]
                        g += basis * linear[offset + 1]
                        b += basis * linear[offset + 2]
                    }
                }
                let scale = 1 / Double(width * height)
                factors.append((r * scale, g * scale, b * scale))
            }
        }
        var hash = base83(Int((x - 1) + (y - 1) * 9), length: 1)
        let ac = factors.dropFirst()
        var maximum = 1.0
        if let largest = ac.map({ max(abs($0.0), abs($0.1), abs($0.2)) }).max() {
            let quantised = max(0, min(82, Int(floor(largest * 166 - 0.5))))
            maximum = Double(quantised + 1) / 166
            hash += base83(quantised, length: 1)
        } else {
            hash += base83(0, length: 1)
        }
        let dc = factors[0]
        hash += base83((linearToSRGB(dc.0) << 16) + (linearToSRGB(dc.1) << 8) + linearToSRGB(dc.2), length: 4)
        for factor in ac {
            func quantise(_ value: Double) -> Int {
                max(0, min(18, Int(floor(signPow(value / maximum, 0.5) * 9 + 9.5))))
            }
            hash += base83(quantise(factor.0) * 19 * 19 + quantise(factor.1) * 19 + quantise(factor.2), length: 2)
        }
        return hash
    }

    /// The most frequent colour of the pixels, at 4 bits per channel, as the mean of that bucket: `#rrggbb`.
    public static func dominantColor(rgb pixels: [UInt8]) -> String {
        var counts = [Int](repeating: 0, count: 4096)
        var sums = [(Int, Int, Int)](repeating: (0, 0, 0), count: 4096)
        for offset in stride(from: 0, to: pixels.count - 2, by: 3) {
            let (r, g, b) = (Int(pixels[offset]), Int(pixels[offset + 1]), Int(pixels[offset + 2]))
            let bucket = (r >> 4) << 8 | (g >> 4) << 4 | (b >> 4)
            counts[bucket] += 1
            sums[bucket] = (sums[bucket].0 + r, sums[bucket].1 + g, sums[bucket].2 + b)
        }
        guard let best = counts.indices.max(by: { counts[$0] < counts[$1] }), counts[best] > 0 else { return "#000000" }
        let n = counts[best]
        return String(format: "#%02x%02x%02x", sums[best].0 / n, sums[best].1 / n, sums[best].2 / n)
    }

    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~")

    static func base83(_ value: Int, length: Int) -> String {
        var result = ""
        for i in 1...length {
            let digit = (value / Int(pow(83.0, Double(length - i)))) % 83
            result.append(alphabet[digit])
        }
        return result
    }

    static func srgbToLinear(_ value: UInt8) -> Double {
        let v = Double(value) / 255
        return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4)
    }

    static func linearToSRGB(_ value: Double) -> Int {
        let v = max(0, min(1, value))
        return v <= 0.0031308 ? Int(v * 12.92 * 255 + 0.5) : Int((1.055 * pow(v, 1 / 2.4) - 0.055) * 255 + 0.5)
    }

    static func signPow(_ value: Double, _ exponent: Double) -> Double {
        copysign(pow(abs(value), exponent), value)
    }
}
