using static DriverAudit.Rules.Tests.RuleText;

namespace DriverAudit.Rules.Tests;

/// <summary>Load errors of the module, string, version-info, signature, hash, call and instruction features, at exact positions.</summary>
public class FeatureValidationTests
{
    /// <summary>The error is at the first occurrence of <paramref name="at"/> in the one-line <paramref name="match"/>.</summary>
    [Theory]
    [InlineData("module: dump", "dump", "'module' must be a mapping")]
    [InlineData("module: {}", "{}", "'module' needs at least one of origin, name, path")]
    [InlineData("module: {origin: disk}", "disk", "'origin' must be file, dump or unloaded, found 'disk'")]
    [InlineData("module: {name: \"/a(/\"}", "\"/a(/\"", "invalid regex")]
    [InlineData("module: {path: \"!\"}", "\"!\"", "'!' needs a pattern after it")]
    [InlineData("module: {base: 1}", "base", "unknown key 'base' in 'module'")]
    [InlineData("string: {text: a, regex: /b/}", "regex", "exactly one of text, ascii, utf16, regex")]
    [InlineData("string: {regex: abc}", "abc", "'regex' must be written /pattern/flags")]
    [InlineData("string: {regex: /(?<=a)b/}", "/(?<=a)b/", "non-backtracking engine refuses")]
    [InlineData("string: {utf16: x, encoding: ascii}", "encoding", "'utf16' already names the encoding")]
    [InlineData("string: {regex: /x/, ignore-case: true}", "{regex", "'ignore-case' does not apply to a regex")]
    [InlineData("string: {text: x, encoding: ebcdic}", "ebcdic", "'encoding' must be ascii, utf16 or any")]
    [InlineData("string: [a]", "[a]", "'string' (a literal or a mapping) must be a mapping")]
    [InlineData("version-info: CompanyName", "CompanyName", "'version-info' (e.g. {CompanyName: \"*Contoso*\"}) must be a mapping")]
    [InlineData("version-info: {CompanyName: [a, {b: c}]}", "{b: c}", "must be a string")]
    [InlineData("signature: {present: false, test: true}", "{present", "'present: false' cannot be combined")]
    [InlineData("signature: {test: yes}", "yes", "'test' must be true or false")]
    [InlineData("signature: {subject: x}", "subject", "unknown key 'subject' in 'signature'")]
    [InlineData("hash: {sha256: abc}", "abc", "'abc' is not a SHA-256 hash (64 hex digits)")]
    [InlineData("hash: {sha256: [0000000000000000000000000000000000000000]}", "0000", "is not a SHA-256 hash")]
    [InlineData("hash: {md5: x}", "md5", "unknown key 'md5' in 'hash'")]
    [InlineData("hash: {sha256: [], authentihash: []}", "authentihash", "'hash' takes exactly one of")]
    [InlineData("hash: {sha256-in: \"@\"}", "\"@\"", "a named list needs a name after '@'")]
    [InlineData("instruction: {mnemonic: [wrmsr, cpuid]}", "cpuid", "unknown 'mnemonic' value 'cpuid' (expected wrmsr, rdmsr, in, out, insb, insw, insd, outsb, outsw, outsd, msr, mrs)")]
    [InlineData("instruction: mov", "mov", "write control-register moves as {mov-to: [cr0, cr4]}")]
    [InlineData("instruction: {mov-to: [cr0, cr9]}", "cr9", "unknown 'mov-to' value 'cr9'")]
    [InlineData("instruction: {mnemonic: in, mov-to: cr0}", "mov-to", "exactly one of mnemonic, mov-to")]
    [InlineData("call: {tag: 0}", "{tag", "'call' needs 'api'")]
    [InlineData("call: {api: \"a!\"}", "\"a!\"", "empty function name after '!'")]
    [InlineData("call: {api: X, args: {}}", "args", "unknown key 'args' in 'call'")]
    [InlineData("call: {api: ExAllocatePoolWithTag, tag: \"Ddk\"}", "\"Ddk\"", "a tag is 4 characters in memory order (e.g. \"Ddk \", trailing spaces count) or an integer, found 'Ddk' (3 characters)")]
    [InlineData("call: {api: ExAllocatePoolWithTag, tag: {in: [\"Ddk \", 0x100000000]}}", "0x1000", "must be between 0 and 4294967295")]
    [InlineData("call: {api: ExAllocatePoolWithTag, tag: {has-any: 1}}", "has-any", "unknown key 'has-any' in 'tag'")]
    [InlineData("call: {api: ExAllocatePool2, pool-type: {eq: 0}}", "pool-type", "'pool-type' is known only for ExAllocatePool, ExAllocatePoolWithQuota, ExAllocatePoolWithTag")]
    [InlineData("call: {api: ExAllocatePoolWithTag, pool-flags: {has-any: 0x80}}", "pool-flags", "'pool-flags' is known only for ExAllocatePool2, ExAllocatePool3")]
    [InlineData("call: {api: ExAllocatePoolWithTag, pool-type: {mask: 0x201}}", "{mask", "'mask' in 'pool-type' needs eq, ne, in or not-in")]
    [InlineData("call: {api: ExAllocatePool2, pool-flags: {has-any: 0}}", "0}", "'has-any' with no bits set")]
    [InlineData("call: {api: ExAllocatePool2, pool-flags: {has-any: [0x80, x]}}", "x]", "each item of 'has-any' must be an integer")]
    [InlineData("call: {api: X, arg: {16: {eq: 0}}}", "16", "argument 16 is never known: the scanner recovers arguments 0-3 of a call")]
    [InlineData("call: {api: X, arg: {4: {unknown: true}}}", "4:", "argument 4 is never known: the scanner recovers arguments 0-3 of a call")]
    [InlineData("call: {api: X, arg: {a: 0}}", "a: 0", "argument index must be a number 0-3, found 'a'")]
    [InlineData("call: {api: X, arg: {0: {in: []}}}", "[]", "'in' must not be an empty list")]
    [InlineData("call: {api: X, arg: {0: {unknown: 1}}}", "1}", "'unknown' must be true or false")]
    [InlineData("call: {api: X, arg: {0: {eq: \"Ddk \"}}}", "\"Ddk \"", "'eq' must be an integer")]
    public void Feature_errors_point_at_the_offending_node(string match, string at, string fragment)
    {
        HasError(Errors(Make(match)), MatchLine, 3 + match.IndexOf(at, StringComparison.Ordinal), fragment);
    }

    [Theory]
    [InlineData("string: x", "{artifact} {api}.", "placeholder {api} is only known for call anchors, but this rule can report on string")]
    [InlineData("instruction: wrmsr", "{artifact} {tag}.", "placeholder {tag} is only known for call anchors, but this rule can report on instruction")]
    [InlineData("call: {api: X}", "{artifact} {mnemonic}.", "placeholder {mnemonic} is only known for instruction anchors, but this rule can report on call")]
    [InlineData("signature: {present: true}", "{artifact} {signer}.", "placeholder {signer} is only known for signature anchors, but this rule can report on image")]
    [InlineData("any: [{signature: {test: true}}, {import: X}]", "{artifact} {signer}.", "can report on import")]
    [InlineData("module: {origin: dump}", "{artifact} {string}.", "can report on image")]
    [InlineData("any: [{call: {api: X}}, {instruction: in}]", "{artifact} {api}.", "can report on instruction")]
    public void New_placeholders_must_be_available_for_every_anchor(string match, string message, string fragment)
    {
        HasError(Errors(Make(match, message: message)), 8, 10, fragment);
    }

    [Theory]
    [InlineData("any: [{call: {api: X}}, {instruction: in}]", "{artifact} at {site} in {function}.")]
    [InlineData("all: [{signature: {signer: \"*\"}}, {module: {origin: file}}]", "{artifact} by {signer}.")]
    [InlineData("any: [{string: x}, {section: .data}]", "{artifact} in {section}.")]
    [InlineData("any: [{call: {api: X}}, {import: Y}]", "{artifact} {import} from {module}.")]
    public void Placeholders_shared_by_every_reportable_anchor_are_accepted(string match, string message)
    {
        Assert.Single(RuleText.Load(Make(match, message: message)).Rules);
    }
}
