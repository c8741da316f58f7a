using System.Globalization;
using System.Text.Json;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.Signing;

namespace DriverAudit.Scanner.Fleet;

/// <summary>
/// One driver image as an inventory lists it (<c>driveraudit inventory</c>, <c>inspect --format json</c>, the fleet
/// database): identity (hashes), build (machine, timestamp, PDB), vendor (version info) and signer. Everything comes
/// from the existing parsers; nothing here reads bytes itself. Dump modules have no file, so no file hashes and no
/// signature (the certificate table is not loaded).
/// </summary>
internal sealed record ImageRecord
{
    public string? Sha256 { get; init; }
    public string? Sha1 { get; init; }
    /// <summary>Authenticode SHA-256 (what LOLDrivers calls Authentihash.SHA256); null for dump modules.</summary>
    public string? AuthentihashSha256 { get; init; }
    public required string Machine { get; init; }
    /// <summary>COFF TimeDateStamp: seconds since 1970 for most builds, a hash for reproducible ones.</summary>
    public required uint Timestamp { get; init; }
    /// <summary>File name of the PDB the CodeView record names (what a symbol server is asked for).</summary>
    public string? PdbName { get; init; }
    public string? PdbGuid { get; init; }
    public uint? PdbAge { get; init; }
    public string? Company { get; init; }
    public string? Product { get; init; }
    public string? FileVersion { get; init; }
    public string? OriginalFilename { get; init; }
    /// <summary>At least one Authenticode signature was decoded (not verified).</summary>
    public bool Signed { get; init; }
    public string? SignerSubject { get; init; }
    public string? SignerIssuer { get; init; }
    public string? SignerSerial { get; init; }
    public DateTimeOffset? SigningTime { get; init; }
    /// <summary>Any signer is a test certificate; null when the signature could not be read (dump modules).</summary>
    public bool? TestSigned { get; init; }

    /// <param name="fileSha256">The file's SHA-256 when already computed (a hash rule may have), else computed here.</param>
    public static ImageRecord Describe(PeImage image, ImageSigning signing, string? fileSha256 = null)
    {
        var isFile = image.Layout == ImageLayout.File;
        var cv = image.Debug.CodeView;
        var signatures = isFile ? signing.Signatures : null;
        var signer = signatures?.PrimarySigner;
        var version = image.VersionInfo;
        return new ImageRecord
        {
            Sha256 = isFile ? fileSha256 ?? ImageHashes.Sha256(image.Source) : null,
            Sha1 = isFile ? ImageHashes.Sha1(image.Source) : null,
            AuthentihashSha256 = isFile ? signing.Hash.Hash?.Sha256 : null,
            Machine = MachineNames.Name(image.MachineValue),
            Timestamp = image.TimeDateStamp,
            PdbName = cv is null ? null : Path.GetFileName(cv.PdbPath.Replace('\\', '/')),
            PdbGuid = cv?.Guid.ToString("D"),
            PdbAge = cv?.Age,
            Company = version.GetString("CompanyName"),
            Product = version.GetString("ProductName"),
            // The string table is what Explorer shows; the fixed block is the fallback.
            FileVersion = version.GetString("FileVersion") ?? version.FileVersion,
            OriginalFilename = version.GetString("OriginalFilename"),
            Signed = signatures?.IsSigned ?? false,
            SignerSubject = signer?.Subject,
            SignerIssuer = signer?.Issuer,
            SignerSerial = signer?.SerialNumber,
            SigningTime = signer?.SigningTime,
            TestSigned = signatures is null || signatures.Status == AuthenticodeStatus.NotAvailable ? null : signatures.IsTestSigned,
        };
    }

    /// <summary>Reads back what <see cref="WriteFields"/> wrote (the result cache). Throws on a missing or mistyped field.</summary>
    public static ImageRecord Read(JsonElement e)
    {
        static string? S(JsonElement e, string name) => e.GetProperty(name).ValueKind == JsonValueKind.Null ? null : e.GetProperty(name).GetString();
        static bool? B(JsonElement e, string name) => e.GetProperty(name).ValueKind == JsonValueKind.Null ? null : e.GetProperty(name).GetBoolean();
        return new ImageRecord
        {
            Sha256 = S(e, "sha256"),
            Sha1 = S(e, "sha1"),
            AuthentihashSha256 = S(e, "authentihashSha256"),
            Machine = S(e, "machine") ?? throw new FormatException("machine"),
            Timestamp = e.GetProperty("timestamp").GetUInt32(),
            PdbName = S(e, "pdbName"),
            PdbGuid = S(e, "pdbGuid"),
            PdbAge = e.GetProperty("pdbAge").ValueKind == JsonValueKind.Null ? null : e.GetProperty("pdbAge").GetUInt32(),
            Company = S(e, "company"),
            Product = S(e, "product"),
            FileVersion = S(e, "fileVersion"),
            OriginalFilename = S(e, "originalFilename"),
            Signed = e.GetProperty("signed").GetBoolean(),
            SignerSubject = S(e, "signerSubject"),
            SignerIssuer = S(e, "signerIssuer"),
            SignerSerial = S(e, "signerSerial"),
            SigningTime = S(e, "signingTime") is { } t ? DateTimeOffset.Parse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal) : null,
            TestSigned = B(e, "testSigned"),
        };
    }

    /// <summary>The inventory columns, in output order (CSV header; JSON property order).</summary>
    public static IReadOnlyList<string> Columns { get; } =
    [
        "host", "path", "module", "size", "sha256", "sha1", "authentihashSha256", "machine", "timestamp", "pdbName", "pdbGuid", "pdbAge",
        "company", "product", "fileVersion", "originalFilename", "signed", "signerSubject", "signerIssuer", "signerSerial",
        "signingTime", "testSigned", "ruleIds",
    ];

    /// <summary>Writes the record's fields (no enclosing object) in <see cref="Columns"/> order after host/path/module/size.</summary>
    public void WriteFields(Utf8JsonWriter w)
    {
        String(w, "sha256", Sha256);
        String(w, "sha1", Sha1);
        String(w, "authentihashSha256", AuthentihashSha256);
        w.WriteString("machine", Machine);
        w.WriteNumber("timestamp", Timestamp);
        String(w, "pdbName", PdbName);
        String(w, "pdbGuid", PdbGuid);
        if (PdbAge is uint age) w.WriteNumber("pdbAge", age); else w.WriteNull("pdbAge");
        String(w, "company", Company);
        String(w, "product", Product);
        String(w, "fileVersion", FileVersion);
        String(w, "originalFilename", OriginalFilename);
        w.WriteBoolean("signed", Signed);
        String(w, "signerSubject", SignerSubject);
        String(w, "signerIssuer", SignerIssuer);
        String(w, "signerSerial", SignerSerial);
        String(w, "signingTime", SigningTime?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
        if (TestSigned is bool t) w.WriteBoolean("testSigned", t); else w.WriteNull("testSigned");
    }

    /// <summary>The values of <see cref="Columns"/> from "sha256" to "testSigned", as CSV cells.</summary>
    public IEnumerable<string?> Cells()
    {
        yield return Sha256;
        yield return Sha1;
        yield return AuthentihashSha256;
        yield return Machine;
        yield return Timestamp.ToString(CultureInfo.InvariantCulture);
        yield return PdbName;
        yield return PdbGuid;
        yield return PdbAge?.ToString(CultureInfo.InvariantCulture);
        yield return Company;
        yield return Product;
        yield return FileVersion;
        yield return OriginalFilename;
        yield return Signed ? "true" : "false";
        yield return SignerSubject;
        yield return SignerIssuer;
        yield return SignerSerial;
        yield return SigningTime?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        yield return TestSigned switch { true => "true", false => "false", null => null };
    }

    private static void String(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name); else w.WriteString(name, value);
    }
}
