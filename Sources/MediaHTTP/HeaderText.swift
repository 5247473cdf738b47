extension Substring {
    /// The text without the spaces and horizontal tabs around it: HTTP's optional whitespace (RFC 9110
    /// §5.6.3). Written on the UTF-8 bytes: Foundation's `trimmingCharacters(in:)` goes through `NSString`
    /// on Linux, which showed in the upload's profile.
    func trimmingOWS() -> String {
        let utf8 = self.utf8
        guard let first = utf8.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
            let last = utf8.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })
        else { return "" }
        return String(self[first..<utf8.index(after: last)])
    }
}

extension String {
    /// The text without the spaces and horizontal tabs around it (see `Substring.trimmingOWS()`).
    func trimmingOWS() -> String { self[...].trimmingOWS() }
}
