import Foundation

/// Days and hours of UTC, computed from the Unix time alone.
///
/// Foundation's `Calendar` and `TimeZone` load ICU's calendar and zone data on first use, a few MiB of
/// every process that touches them. UTC has neither daylight saving nor offsets, so the proleptic
/// Gregorian calendar's arithmetic is all that names an hour bucket or a day partition.
public enum UTCCalendar {
    /// The year, month (1–12) and day (1–31) of a count of days since 1970-01-01 (the civil-from-days
    /// algorithm: eras of 400 years, years starting in March so that the leap day comes last).
    public static func civilDate(daysSince1970 days: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The count of days since 1970-01-01 of a calendar date, or `nil` when the date does not exist
    /// (month 13, 31 April, 29 February of a common year).
    public static func daysSince1970(year: Int, month: Int, day: Int) -> Int? {
        guard (1...12).contains(month), (1...31).contains(day) else { return nil }
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        // a day past the month's end rolls into the next month: refuse it
        let back = civilDate(daysSince1970: days)
        guard back.year == year, back.month == month, back.day == day else { return nil }
        return days
    }

    /// The start of a UTC day, or `nil` when the date does not exist.
    public static func startOfDay(year: Int, month: Int, day: Int) -> Date? {
        daysSince1970(year: year, month: month, day: day).map { Date(timeIntervalSince1970: TimeInterval($0) * 86_400) }
    }

    /// The start of the UTC day written as the number `YYYYMMDD`, or `nil` when that date does not exist.
    public static func startOfDay(yyyymmdd value: Int) -> Date? {
        startOfDay(year: value / 10_000, month: value / 100 % 100, day: value % 100)
    }

    /// The UTC calendar date of `date`.
    public static func civilDate(of date: Date) -> (year: Int, month: Int, day: Int) {
        civilDate(daysSince1970: Int((date.timeIntervalSince1970 / 86_400).rounded(.down)))
    }

    /// `value` in decimal, zero-padded to `width` digits.
    public static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
