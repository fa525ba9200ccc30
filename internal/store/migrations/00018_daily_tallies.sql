-- Daily tallies for the dashboard (B10): how many contacts have each email
-- opt-in status, and how many have granted or withdrawn each purpose, one
-- set of figures per day (in UTC). A periodic job counts them and replaces
-- the day's set, so that the last count of a day stands for it; the
-- dashboard reads these few rows instead of counting a million contacts on
-- every view, and draws the opt-in statuses over time from them. A day
-- nothing was counted (the service was down) has no rows.
--
-- measure: opt_in (subject: the opt-in status), granted or withdrawn
-- (subject: the purpose's id). counted_at: when the set was counted, in
-- microseconds since the Unix epoch.

-- +goose Up
CREATE TABLE daily_tallies (
    day        TEXT NOT NULL,
    measure    TEXT NOT NULL,
    subject    TEXT NOT NULL,
    contacts   BIGINT NOT NULL,
    counted_at BIGINT NOT NULL,
    PRIMARY KEY (day, measure, subject)
);

-- +goose Down
DROP TABLE daily_tallies;
