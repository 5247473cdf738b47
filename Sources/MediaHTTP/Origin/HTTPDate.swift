import Foundation

/// HTTP dates (RFC 9110 §5.6.7): written as IMF-fixdate, read in all three formats recipients must accept.
enum HTTPDate {
    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sun, 06 Nov 1994 08:49:37 GMT`
    static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(weekdays[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    /// Parses IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and
    /// asctime (`Sun Nov  6 08:49:37 1994`); `nil` for anything else.
    static func parse(_ text: String) -> Date? {
        guard text.utf8.count <= 64 else { return nil }
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" || $0 == ":" }).map(String.init)
        let day: String
        let month: String
        let year: String
        let clock: ArraySlice<String>
        if tokens.count == 7, months.contains(tokens[1]) {
            // asctime: weekday month day hh mm ss year
            (month, day, clock, year) = (tokens[1], tokens[2], tokens[3...5], tokens[6])
        } else if tokens.count == 8, tokens[7] == "GMT" {
            (day, month, year, clock) = (tokens[1], tokens[2], tokens[3], tokens[4...6])
        } else {
            return nil
        }
        guard let monthIndex = months.firstIndex(of: month), let dayNumber = Int32(day), (1...31).contains(dayNumber),
            var yearNumber = Int32(year), year.count == 4 || year.count == 2,
            let hour = Int32(clock[clock.startIndex]), let minute = Int32(clock[clock.startIndex + 1]),
            let second = Int32(clock[clock.startIndex + 2]),
            (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        if year.count == 2 {
            // RFC 850 two-digit years: the nearest year that is not more than 50 years ahead
            yearNumber += yearNumber < 70 ? 2000 : 1900
        }
        var parts = tm()
        parts.tm_year = yearNumber - 1900
        parts.tm_mon = Int32(monthIndex)
        parts.tm_mday = dayNumber
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }
}
