import Foundation
import MediaCore

/// A manifest row that cannot be ingested, reported and skipped.
public struct ManifestRowError: Sendable, Hashable, Error {
    /// 1-based line number in the manifest.
    public var line: Int
    /// The row's path when it could be read, else the raw line.
    public var path: String
    public var message: String
}

/// Reads ingest manifests: CSV with a header (`path,owner_id,context,context_id[,private]`) or JSON Lines
/// (one object per line with the same keys). Bad rows are returned beside the good ones, never fatal.
public enum IngestManifest {
    public enum Format: Sendable { case csv, jsonLines }

    /// The format by the file's extension: `.csv`, or `.jsonl`/`.ndjson`.
    public static func format(ofPath path: String) -> Format? {
        switch (path as NSString).pathExtension.lowercased() {
        case "csv": .csv
        case "jsonl", "ndjson": .jsonLines
        default: nil
        }
    }

    /// Parses a manifest's text. Throws only when the whole file is unusable (a CSV header without the
    /// required columns); every other problem is one ``ManifestRowError``.
    public static func parse(_ text: String, format: Format) throws(MediaError) -> (items: [IngestItem], errors: [ManifestRowError]) {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        var items: [IngestItem] = []
        var errors: [ManifestRowError] = []
        switch format {
        case .csv:
            guard let headerIndex = lines.firstIndex(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else { return ([], []) }
            let header = splitCSV(lines[headerIndex]).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            let missing = ["path", "owner_id", "context", "context_id"].filter { !header.contains($0) }
            guard missing.isEmpty else {
                throw MediaError(
                    .invalidRequest,
                    "the CSV header lacks \(missing.joined(separator: ", ")) (expected path,owner_id,context,context_id[,private])"
                )
            }
            for index in lines.indices where index > headerIndex && !lines[index].trimmingCharacters(in: .whitespaces).isEmpty {
                let cells = splitCSV(lines[index])
                var fields: [String: String] = [:]
                for (column, name) in header.enumerated() where column < cells.count { fields[name] = cells[column] }
                if cells.count > header.count {
                    errors.append(ManifestRowError(line: index + 1, path: fields["path"] ?? lines[index], message: "more cells than header columns"))
                    continue
                }
                append(fields, line: index + 1, raw: lines[index], to: &items, errors: &errors)
            }
        case .jsonLines:
            for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    errors.append(ManifestRowError(line: index + 1, path: line, message: "not a JSON object"))
                    continue
                }
                var fields: [String: String] = [:]
                for (key, value) in object {
                    switch value {
                    case let text as String: fields[key] = text
                    case let flag as Bool: fields[key] = flag ? "true" : "false"
                    case let number as NSNumber: fields[key] = number.stringValue
                    default: fields[key] = "\(value)"
                    }
                }
                append(fields, line: index + 1, raw: line, to: &items, errors: &errors)
            }
        }
        return (items, errors)
    }

    private static func append(
        _ fields: [String: String],
        line: Int,
        raw: String,
        to items: inout [IngestItem],
        errors: inout [ManifestRowError]
    ) {
        let path = fields["path"]?.trimmingCharacters(in: .whitespaces) ?? ""
        func fail(_ message: String) { errors.append(ManifestRowError(line: line, path: path.isEmpty ? raw : path, message: message)) }
        guard !path.isEmpty else { return fail("path is empty") }
        let owner = fields["owner_id"]?.trimmingCharacters(in: .whitespaces) ?? ""
        let contextID = fields["context_id"]?.trimmingCharacters(in: .whitespaces) ?? ""
        guard let context = UploadContext(rawValue: fields["context"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? "") else {
            return fail("context must be one of \(UploadContext.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do {
            try ExternalID.validate(owner, name: "owner_id")
            try ExternalID.validate(contextID, name: "context_id")
        } catch {
            return fail(error.message)
        }
        let privateText = fields["private"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        let isPrivate: Bool
        switch privateText {
        case "", "false", "0", "no": isPrivate = false
        case "true", "1", "yes": isPrivate = true
        default: return fail("private must be true or false")
        }
        items.append(
            IngestItem(path: path, destination: IngestDestination(ownerID: owner, context: context, contextID: contextID, isPrivate: isPrivate))
        )
    }

    /// Splits one CSV line (RFC 4180 quoting; a quoted cell may contain commas and doubled quotes).
    static func splitCSV(_ line: String) -> [String] {
        var cells: [String] = []
        var cell = ""
        var quoted = false
        var iterator = Array(line).makeIterator()
        var pending: Character? = nil
        while let character = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if character == "\"" {
                    let next = iterator.next()
                    if next == "\"" {
                        cell.append("\"")
                    } else {
                        quoted = false
                        pending = next
                    }
                } else {
                    cell.append(character)
                }
            } else if character == "\"" && cell.isEmpty {
                quoted = true
            } else if character == "," {
                cells.append(cell)
                cell = ""
            } else {
                cell.append(character)
            }
        }
        cells.append(cell)
        return cells
    }
}
