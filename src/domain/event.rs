//! The kinds of change a case goes through, as the change feed names them.
//! An event carries ids and states only: never free text, never the child
//! reference (a consumer reads details with its own token, so the access
//! rules and the access log stay in one place).

/// What happened to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A case was raised.
    CaseRaised,
    /// A case moved to a higher stage.
    CaseEscalated,
    /// A case was closed with an agreed outcome.
    CaseResolved,
    /// A case was withdrawn by the raising side.
    CaseWithdrawn,
    /// A record was written on a case.
    RecordAdded,
    /// An agency recorded its view.
    ViewRecorded,
    /// An action was agreed.
    ActionAgreed,
    /// An agency gave feedback on a closed case.
    FeedbackGiven,
    /// The receiving side acknowledged the case at its stage.
    CaseAcknowledged,
    /// The day the family was told of the case was recorded (Rotherham's
    /// challenge).
    FamilyToldRecorded,
    /// An open milestone of the case is due soon (a timer, at the
    /// protocol's fractions of its working days).
    MilestoneDueSoon,
    /// An open milestone of the case passed its due date (a timer).
    MilestoneOverdue,
    /// The case's stage passed its due date (a timer; a stage without
    /// milestones).
    StageOverdue,
    /// The owner agency recorded an agreed action done.
    ActionCompleted,
    /// An open agreed action is due soon (a timer).
    ActionDueSoon,
    /// An open agreed action passed its due date (a timer).
    ActionOverdue,
    /// The case reached a stage at which the protocol tells the board or
    /// its business unit (`board_told`).
    BoardNotified,
    /// A conference's step-down to child-in-need planning was recorded on
    /// the case (Rotherham's challenge).
    StepDownRecorded,
    /// The check of the case's step-down was recorded; when not evidenced,
    /// a new case follows it (its own `CaseRaised`).
    StepDownChecked,
    /// The check of the case's step-down is due (a timer: the start of the
    /// day `after_days` after the conference), whatever the case's stage
    /// or status.
    StepDownCheckDue,
    /// An agency beyond the two parties was brought into the case
    /// (`joinCase`).
    ParticipantJoined,
    /// An agency's part in the case ended (`leaveCase`).
    ParticipantLeft,
}

impl EventType {
    /// Every type, in the order of the list above.
    pub const ALL: [EventType; 22] = [
        Self::CaseRaised,
        Self::CaseEscalated,
        Self::CaseResolved,
        Self::CaseWithdrawn,
        Self::RecordAdded,
        Self::ViewRecorded,
        Self::ActionAgreed,
        Self::FeedbackGiven,
        Self::CaseAcknowledged,
        Self::FamilyToldRecorded,
        Self::MilestoneDueSoon,
        Self::MilestoneOverdue,
        Self::StageOverdue,
        Self::ActionCompleted,
        Self::ActionDueSoon,
        Self::ActionOverdue,
        Self::BoardNotified,
        Self::StepDownRecorded,
        Self::StepDownChecked,
        Self::StepDownCheckDue,
        Self::ParticipantJoined,
        Self::ParticipantLeft,
    ];

    /// The stored spelling, as the feed shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CaseRaised => "CASE_RAISED",
            Self::CaseEscalated => "CASE_ESCALATED",
            Self::CaseResolved => "CASE_RESOLVED",
            Self::CaseWithdrawn => "CASE_WITHDRAWN",
            Self::RecordAdded => "RECORD_ADDED",
            Self::ViewRecorded => "VIEW_RECORDED",
            Self::ActionAgreed => "ACTION_AGREED",
            Self::FeedbackGiven => "FEEDBACK_GIVEN",
            Self::CaseAcknowledged => "CASE_ACKNOWLEDGED",
            Self::FamilyToldRecorded => "FAMILY_TOLD_RECORDED",
            Self::MilestoneDueSoon => "MILESTONE_DUE_SOON",
            Self::MilestoneOverdue => "MILESTONE_OVERDUE",
            Self::StageOverdue => "STAGE_OVERDUE",
            Self::ActionCompleted => "ACTION_COMPLETED",
            Self::ActionDueSoon => "ACTION_DUE_SOON",
            Self::ActionOverdue => "ACTION_OVERDUE",
            Self::BoardNotified => "BOARD_NOTIFIED",
            Self::StepDownRecorded => "STEP_DOWN_RECORDED",
            Self::StepDownChecked => "STEP_DOWN_CHECKED",
            Self::StepDownCheckDue => "STEP_DOWN_CHECK_DUE",
            Self::ParticipantJoined => "PARTICIPANT_JOINED",
            Self::ParticipantLeft => "PARTICIPANT_LEFT",
        }
    }

    /// The type of a stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn every_type_reads_back_from_its_spelling() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t), "{t:?}");
        }
        assert_eq!(EventType::parse("case_raised"), None);
    }
}
