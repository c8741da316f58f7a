namespace DriverAudit.Rules.Predicates;

/// <summary>Anchor kinds a predicate can report, known at load time (used to check message placeholders).</summary>
[Flags]
internal enum AnchorKinds : byte
{
    None = 0,
    Import = 1,
    Export = 2,
    Section = 4,
    /// <summary>The whole image: reported when no item-level evidence exists.</summary>
    Image = 8,
    Call = 16,
    Instruction = 32,
    String = 64,
    /// <summary>The image anchor carrying a signer (<c>signature:</c> with signer constraints): kind "image", with {signer}.</summary>
    Signature = 128,
}

/// <summary>
/// What a true predicate can leave as evidence: <see cref="Kinds"/> of item anchors, and whether it may
/// leave none at all (then the match falls back to the image anchor).
/// </summary>
internal readonly record struct EvidenceShape(AnchorKinds Kinds, bool MayBeEmpty)
{
    public static EvidenceShape Nothing => new(AnchorKinds.None, true);
    public static EvidenceShape Always(AnchorKinds kind) => new(kind, false);

    /// <summary>What a finding of a rule with this match tree can be anchored on.</summary>
    public AnchorKinds Reported => MayBeEmpty ? Kinds | AnchorKinds.Image : Kinds;
}
