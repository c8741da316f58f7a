using System.Text.RegularExpressions;

namespace DriverAudit.Rules.Loading;

/// <summary>
/// Rule id grammar. The default pack owns <c>DA</c> + 4 digits; custom packs use their own prefix
/// (<c>[A-Z][A-Z0-9]{1,9}[0-9]{3,5}</c>), and may not squat on the <c>DA</c> + digits namespace.
/// </summary>
internal static partial class RuleIds
{
    public static bool IsValid(string id) =>
        DefaultPack().IsMatch(id) || (Custom().IsMatch(id) && !ReservedPrefix().IsMatch(id));

    public static string Explain(string id) =>
        ReservedPrefix().IsMatch(id) && !DefaultPack().IsMatch(id)
            ? $"'{id}' is not a valid rule id: ids starting with DA and a digit are the default pack's and are DA plus 4 digits (e.g. DA1001)"
            : $"'{id}' is not a valid rule id (expected DA plus 4 digits, or a custom id like ACME0001: an uppercase prefix and 3 to 5 digits)";

    [GeneratedRegex("^DA[0-9]{4}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex DefaultPack();

    [GeneratedRegex("^[A-Z][A-Z0-9]{1,9}[0-9]{3,5}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex Custom();

    [GeneratedRegex("^DA[0-9]", RegexOptions.CultureInvariant)]
    private static partial Regex ReservedPrefix();
}
