using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Lists;
using DriverAudit.Rules.Patterns;

namespace DriverAudit.Rules.Predicates;

/// <summary><c>module:</c> provenance (origin, base name, path); every key given must hold. Image-wide.</summary>
internal sealed class ModuleFeature(string? origin, FilterPattern? name, FilterPattern? path) : Predicate
{
    public override int Cost => Costs.Module;
    public override EvidenceShape Shape => EvidenceShape.Nothing;
    public override void Collect(EvalContext ctx, List<Anchor> sink) { }

    public override Tri Test(EvalContext ctx)
    {
        var m = ctx.Facts.Module;
        return TriLogic.From(
            (origin is null || string.Equals(m.Origin, origin, StringComparison.OrdinalIgnoreCase))
            && (name is null || name.IsMatch(m.Name))
            && (path is null || path.IsMatch(m.Path)));
    }
}

/// <summary>
/// <c>version-info:</c> VS_VERSIONINFO strings; keys are compared ignoring case, every key given must be
/// present and match (a negated pattern needs the key present with another value). Image-wide.
/// </summary>
internal sealed class VersionInfoFeature(KeyValuePair<string, FilterPattern>[] entries) : Predicate
{
    public override int Cost => Costs.VersionInfo;
    public override EvidenceShape Shape => EvidenceShape.Nothing;
    public override void Collect(EvalContext ctx, List<Anchor> sink) { }

    public override Tri Test(EvalContext ctx)
    {
        var info = ctx.Facts.VersionInfo;
        foreach (var (key, pattern) in entries)
        {
            if (Lookup(info, key) is not { } value || !pattern.IsMatch(value)) return Tri.False;
        }
        return Tri.True;
    }

    private static string? Lookup(IReadOnlyDictionary<string, string> info, string key)
    {
        if (info.TryGetValue(key, out var exact)) return exact;
        foreach (var (k, v) in info)
            if (string.Equals(k, key, StringComparison.OrdinalIgnoreCase)) return v;
        return null;
    }
}

/// <summary>
/// <c>signature:</c> the parsed (unverified) Authenticode signature. <c>present</c> tests whether there is one;
/// <c>signer</c>, <c>issuer</c>, <c>test</c> must all hold for one and the same signer. Anchored on the image,
/// with <c>{signer}</c> = that signer's subject.
/// </summary>
internal sealed class SignatureFeature(bool? present, FilterPattern? signer, FilterPattern? issuer, bool? test) : Predicate
{
    private bool TestsSigners => signer is not null || issuer is not null || test is not null;

    public override int Cost => Costs.Signature;
    public override EvidenceShape Shape => TestsSigners ? EvidenceShape.Always(AnchorKind.Signature) : EvidenceShape.Nothing;

    public override Tri Test(EvalContext ctx)
    {
        var signature = ctx.Facts.Signature;
        if (present is bool p && (signature is not null) != p) return Tri.False;
        if (!TestsSigners) return Tri.True;
        return TriLogic.From(signature is not null && FirstMatch(signature) is not null);
    }

    private SignerFact? FirstMatch(SignatureFact signature)
    {
        foreach (var s in signature.Signers)
            if ((signer is null || signer.IsMatch(s.Subject)) && (issuer is null || issuer.IsMatch(s.Issuer))
                && (test is not bool t || s.IsTestCertificate == t))
                return s;
        return null;
    }

    public override void Collect(EvalContext ctx, List<Anchor> sink)
    {
        if (!TestsSigners || ctx.Facts.Signature is not { } signature || FirstMatch(signature) is not { } s) return;
        var values = ctx.Values(2);
        values["signer"] = s.Subject;
        values["value"] = s.Subject;
        sink.Add(new Anchor(AnchorKind.Image, "image", values));
    }
}

internal enum HashKind { FileSha256, Authentihash }

/// <summary>
/// <c>hash:</c> the file SHA-256 or the Authenticode hash against inline values or a hash list. A hash the
/// scanner cannot compute (null: a dump module has no file) is unknown. Image-wide.
/// </summary>
internal sealed class HashFeature(HashKind kind, HashList list) : Predicate
{
    public override int Cost => Costs.Hash;
    public override EvidenceShape Shape => EvidenceShape.Nothing;
    public override void Collect(EvalContext ctx, List<Anchor> sink) { }

    public override Tri Test(EvalContext ctx)
    {
        if (kind == HashKind.FileSha256)
            return list.FileSha256.Count == 0 ? Tri.False
                : ctx.Facts.FileSha256 is { } h ? TriLogic.From(list.FileSha256.Contains(h)) : Tri.Unknown;

        if (list.AuthentihashSha256.Count == 0 && list.AuthentihashSha1.Count == 0) return Tri.False;
        var result = Tri.False;
        if (list.AuthentihashSha256.Count > 0)
        {
            if (ctx.Facts.AuthenticodeSha256 is not { } a) result = Tri.Unknown;
            else if (list.AuthentihashSha256.Contains(a)) return Tri.True;
        }
        if (list.AuthentihashSha1.Count > 0)
        {
            if (ctx.Facts.AuthenticodeSha1 is not { } a) result = Tri.Unknown;
            else if (list.AuthentihashSha1.Contains(a)) return Tri.True;
        }
        return result;
    }
}
