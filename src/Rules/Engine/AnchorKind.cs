namespace DriverAudit.Rules.Engine;

/// <summary>
/// What a finding points at, defined once: an <see cref="Anchor"/> carries one kind; the loader combines them as
/// flags (what a predicate can report, to check message placeholders). Spelled only by <see cref="AnchorKindNames"/>.
/// </summary>
[Flags]
public enum AnchorKind : byte
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

/// <summary>The spelling of an anchor kind in reports and caches: "import", "call", "image", ...</summary>
public static class AnchorKindNames
{
    /// <summary>"import", "export", "section", "image", "call", "instruction", "string" (a signature anchor is an image anchor).</summary>
    public static string Name(this AnchorKind kind) => kind switch
    {
        AnchorKind.Import => "import",
        AnchorKind.Export => "export",
        AnchorKind.Section => "section",
        AnchorKind.Image or AnchorKind.Signature => "image",
        AnchorKind.Call => "call",
        AnchorKind.Instruction => "instruction",
        AnchorKind.String => "string",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "an anchor has exactly one kind"),
    };

    /// <summary>The kind <see cref="Name"/> spells <paramref name="name"/>, or null.</summary>
    public static AnchorKind? Parse(string name) => name switch
    {
        "import" => AnchorKind.Import,
        "export" => AnchorKind.Export,
        "section" => AnchorKind.Section,
        "image" => AnchorKind.Image,
        "call" => AnchorKind.Call,
        "instruction" => AnchorKind.Instruction,
        "string" => AnchorKind.String,
        _ => null,
    };
}

/// <summary>
/// What a true predicate can leave as evidence: <see cref="Kinds"/> of item anchors, and whether it may
/// leave none at all (then the match falls back to the image anchor).
/// </summary>
internal readonly record struct EvidenceShape(AnchorKind Kinds, bool MayBeEmpty)
{
    public static EvidenceShape Nothing => new(AnchorKind.None, true);
    public static EvidenceShape Always(AnchorKind kind) => new(kind, false);

    /// <summary>What a finding of a rule with this match tree can be anchored on.</summary>
    public AnchorKind Reported => MayBeEmpty ? Kinds | AnchorKind.Image : Kinds;
}
