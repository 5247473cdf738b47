import Foundation
import MediaCore
import Testing

@Suite struct UTCCalendarTests {
    /// Foundation's Gregorian calendar in UTC, the reference the arithmetic is checked against.
    static let reference: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    @Test func everyDayFrom1900To2200IsTheCalendarsDateBothWays() {
        let first = -25_567  // 1900-01-01
        let last = 84_005  // 2199-12-31
        var checked = 0
        for days in stride(from: first, through: last, by: 1) {
            let date = Date(timeIntervalSince1970: TimeInterval(days) * 86_400 + 43_200)
            let expected = Self.reference.dateComponents([.year, .month, .day], from: date)
            let civil = UTCCalendar.civilDate(daysSince1970: days)
            guard civil.year == expected.year, civil.month == expected.month, civil.day == expected.day,
                UTCCalendar.daysSince1970(year: civil.year, month: civil.month, day: civil.day) == days
            else {
                Issue.record("day \(days): \(civil), calendar \(expected)")
                return
            }
            checked += 1
        }
        #expect(checked == 109_573)
    }

    @Test(arguments: [(2026, 2, 29), (2100, 2, 29), (2026, 4, 31), (2026, 13, 1), (2026, 0, 1), (2026, 1, 0), (2026, 1, 32)])
    func aDateThatDoesNotExistHasNoDay(_ year: Int, _ month: Int, _ day: Int) {
        #expect(UTCCalendar.daysSince1970(year: year, month: month, day: day) == nil)
    }

    @Test func aLeapDayExistsInALeapYear() {
        #expect(UTCCalendar.startOfDay(year: 2028, month: 2, day: 29) == Date(timeIntervalSince1970: 1_835_395_200))
        #expect(UTCCalendar.startOfDay(year: 2000, month: 2, day: 29) == Date(timeIntervalSince1970: 951_782_400))
        #expect(UTCCalendar.startOfDay(yyyymmdd: 20_280_229) == Date(timeIntervalSince1970: 1_835_395_200))
        #expect(UTCCalendar.startOfDay(yyyymmdd: 20_260_229) == nil)
    }

    @Test func theDateOfAnInstantBeforeMidnightIsThatDay() {
        let (year, month, day) = UTCCalendar.civilDate(of: Date(timeIntervalSince1970: 1_798_761_599))  // 2026-12-31T23:59:59Z
        #expect(year == 2026 && month == 12 && day == 31)
        #expect(UTCCalendar.digits(7, 2) == "07" && UTCCalendar.digits(2026, 2) == "2026")
    }
}
