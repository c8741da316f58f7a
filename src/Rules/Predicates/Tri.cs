namespace DriverAudit.Rules.Predicates;

/// <summary>
/// Three-valued (Kleene) truth. A fact the scanner cannot know (e.g. pages missing in a dump) is
/// <see cref="Unknown"/>; only <see cref="True"/> produces a finding, and <c>not Unknown</c> stays Unknown,
/// so a missing fact never turns into a finding by negation.
/// </summary>
internal enum Tri : byte { False = 0, True = 1, Unknown = 2 }

internal static class TriLogic
{
    public static Tri Not(Tri value) => value switch { Tri.True => Tri.False, Tri.False => Tri.True, _ => Tri.Unknown };
    public static Tri From(bool value) => value ? Tri.True : Tri.False;
    public static Tri From(bool? value) => value is bool b ? From(b) : Tri.Unknown;
}
