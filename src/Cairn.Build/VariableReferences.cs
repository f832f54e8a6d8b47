using System.Text;

namespace Cairn.Build;

/// <summary>One piece of a recipe value: literal text, or the name of a <c>${VAR}</c> reference.</summary>
internal readonly record struct ValuePart(string Text, bool IsVariable);

/// <summary>
/// The one reader of <c>${VAR}</c> references in recipe values (build env, modules variables): <c>$$</c> is a literal
/// <c>$</c>; each writer (shell environment, Tcl, Lua) decides what a reference becomes.
/// </summary>
internal static class VariableReferences
{
    /// <summary>
    /// Splits <paramref name="value"/> into literal runs and references; a reference <paramref name="isKnown"/>
    /// refuses, or one without a closing brace, throws what <paramref name="refuse"/> (variable, unclosed) returns.
    /// </summary>
    public static List<ValuePart> Split(string value, Func<string, bool> isKnown, Func<string, bool, Exception> refuse)
    {
        var parts = new List<ValuePart>();
        var literal = new StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '$' && i + 1 < value.Length && value[i + 1] == '$')
            {
                literal.Append('$');
                i++;
            }
            else if (value[i] == '$' && i + 1 < value.Length && value[i + 1] == '{')
            {
                var end = value.IndexOf('}', i + 2);
                var variable = end < 0 ? value[(i + 2)..] : value[(i + 2)..end];
                if (end < 0 || !isKnown(variable)) throw refuse(variable, end < 0);
                if (literal.Length > 0) parts.Add(new ValuePart(literal.ToString(), false));
                literal.Clear();
                parts.Add(new ValuePart(variable, true));
                i = end;
            }
            else
            {
                literal.Append(value[i]);
            }
        }

        if (literal.Length > 0) parts.Add(new ValuePart(literal.ToString(), false));
        return parts;
    }
}
