// Expand an iCalendar file the way ical.js (Thunderbird, Nextcloud Calendar) does, with only the
// VTIMEZONE components inside the file, and print {uid: [start as Unix seconds, ...]} as JSON.
// Usage: node expand.mjs <file.ics> <occurrences per event>
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const [file, count] = process.argv.slice(2);
const calendar = new ICAL.Component(ICAL.parse(readFileSync(file, "utf8")));
for (const vtimezone of calendar.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(vtimezone);  // the feed's own zone definitions; ical.js has none built in
}
const starts = {};
for (const vevent of calendar.getAllSubcomponents("vevent")) {
  const event = new ICAL.Event(vevent);
  if (event.isRecurrenceException()) continue;
  const found = (starts[event.uid] = starts[event.uid] || []);
  if (event.startDate.zone.tzid !== "UTC" && !calendar.getTimeZoneByID(event.startDate.zone.tzid)) {
    throw new Error(`event ${event.uid} uses a zone the feed does not define: ${event.startDate.zone.tzid}`);
  }
  const iterator = event.iterator();
  for (let next = iterator.next(); next && found.length < Number(count); next = iterator.next()) {
    found.push(next.toUnixTime());
  }
}
process.stdout.write(JSON.stringify(starts));
