"""Words of the report documents in English and Arabic (:mod:`.document`).

Arabic is written for the reader, not pasted from a translator: Arabic month names (يناير ... ديسمبر, as used in
Egypt and the Gulf), Arabic-Indic digits (٠-٩) for dates, counts and percentages. Values are inserted already
escaped/marked up by the caller (ids and amounts isolated left to right).
"""
from __future__ import annotations

from html import escape

MONTHS_AR = ["يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر",
             "ديسمبر"]
_AR_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def digits(text: str, lang: str) -> str:
    """Arabic-Indic digits for Arabic readers; unchanged for English."""
    return text.translate(_AR_DIGITS) if lang == "ar" else text


EN = {
    "title": "Trace report: {chain}",
    "generated": "Generated", "data_version": "Data version", "blocks": "blocks", "synthetic": "synthetic",
    "data_dates": "Data covers", "sources": "Sources", "chain": "Chain", "policy": "Policy", "unknown": "unknown",
    "h_summary": "Summary", "h_method": "Method and policies", "h_coverage": "Coverage and caveats",
    "h_cashout": "Cash-out: where the traced value reached services", "h_appendix": "Appendix: identifiers",
    "summary_seeded": "The trace followed {amount} from {n} seed(s) forward through the data.",
    "summary_sinks": "{amount} ({pct}) reached {n} service(s) where funds are cashed out or leave the public chain.",
    "summary_held": "{amount} ({pct}) is still held: not moved as of {date} (block {height}), the end of the data; "
                    "later movements are not in the data.",
    "summary_stopped": "{amount} ({pct}) was not followed further (reason: {reason}).",
    "summary_partial": "Partial data: the seeds sent {amount} more than the data shows them receiving. The data "
                       "begins after they were funded (the theft itself is not in it), so these figures are shares "
                       "of what the data shows, not of what was stolen.",
    "partial_result": "Partial result:",
    "method_intro": "Value is followed forward from the seeds, transaction by transaction, in exact integer base "
                    "units. A taint policy decides which part of a mixed balance or transaction carries the "
                    "traced value; different policies give different answers, and the spread between them is "
                    "the uncertainty of the attribution.",
    "invariant": "Every figure is exact: reached services + still held + not followed + fees = total seeded.",
    "policy_haircut": "haircut: each outgoing transfer carries traced value in proportion to the traced share of "
                      "the balance.",
    "policy_poison": "poison: any output of a transaction with a traced input is wholly traced (an upper bound).",
    "policy_seniority": "seniority: traced value leaves first.",
    "policy_fifo": "FIFO: value leaves in the order it arrived.",
    "policy_lifo": "LIFO: the newest value leaves first.",
    "coverage_intro": "What this report stands on, what was assumed, and what could not be known:",
    "ev_data": "Data", "ev_held": "Still held means", "ev_partial_seed": "PARTIAL SEED",
    "ev_synthesised_ids": "Synthesised ids", "ev_policy": "Policy", "ev_thresholds": "Thresholds",
    "ev_assumed_opening_balances": "Assumed opening balances", "ev_coverage": "Coverage",
    "entity": "Receiving service", "category": "Category", "amount": "Amount", "share": "Share",
    "first_seen": "First seen", "transfers": "Transfers", "no_sinks": "No traced value reached a tagged service.",
    "path_n": "Evidence path {n}", "hop": "Hop", "transaction": "Transaction", "address": "Address",
    "traced": "Traced", "time": "Time", "addresses": "Addresses", "transactions": "Transactions",
    "appendix_intro": "Every address and transaction cited above. Ids marked [synthesised] were made up by "
                      "chaintrace for a source without transaction hashes: they are not on-chain ids.",
    "synthesised": "synthesised",
    "case": "Case", "analysts": "Analysts", "opened": "Opened", "h_case": "Case record (append-only audit trail)",
    "analyst": "Analyst", "action": "Action",
}

AR = {
    "title": "تقرير تتبّع الأموال: {chain}",
    "generated": "تاريخ الإعداد", "data_version": "إصدار البيانات", "blocks": "الكتل", "synthetic": "اصطناعية",
    "data_dates": "الفترة التي تغطيها البيانات", "sources": "المصادر", "chain": "السلسلة", "policy": "سياسة التتبّع",
    "unknown": "غير معروف",
    "h_summary": "الملخّص", "h_method": "المنهجية والسياسات", "h_coverage": "التغطية والتحفّظات",
    "h_cashout": "التسييل: الخدمات التي وصلت إليها الأموال المتتبَّعة", "h_appendix": "ملحق: المعرّفات",
    "summary_seeded": "تتبّع التقرير مبلغ {amount} انطلاقًا من {n} نقطة بداية عبر البيانات المتاحة.",
    "summary_sinks": "وصل {amount} ({pct}) إلى {n} خدمة تُسيَّل فيها الأموال أو تغادر السلسلة العامة.",
    "summary_held": "ما زال {amount} ({pct}) محتفظًا به: لم يتحرّك حتى {date} (الكتلة {height})، وهو نهاية "
                    "البيانات؛ أي حركة لاحقة ليست في البيانات.",
    "summary_stopped": "توقّف تتبّع {amount} ({pct}) (السبب: {reason}).",
    "summary_partial": "بيانات جزئية: أرسلت نقاط البداية {amount} أكثر مما تُظهر البيانات أنها تلقّته. تبدأ "
                       "البيانات بعد تمويلها (السرقة نفسها ليست فيها)، لذا فهذه الأرقام نسبٌ مما تُظهره البيانات، "
                       "لا مما سُرق.",
    "partial_result": "نتيجة جزئية:",
    "method_intro": "تُتتبَّع القيمة من نقاط البداية إلى الأمام، معاملةً بعد معاملة، بوحدات أساسية صحيحة ودقيقة. "
                    "تحدّد سياسة التتبّع أيّ جزء من الرصيد المختلط يحمل القيمة المتتبَّعة؛ وتعطي السياسات المختلفة "
                    "نتائج مختلفة، والفرق بينها هو مقدار عدم اليقين في النسبة.",
    "invariant": "كل رقم دقيق: ما وصل إلى الخدمات + ما زال محتفظًا به + ما توقّف تتبّعه + الرسوم = المجموع المتتبَّع.",
    "policy_haircut": "الاقتطاع النسبي (haircut): يحمل كل تحويل صادر قيمة متتبَّعة بنسبة الحصة المتتبَّعة من الرصيد.",
    "policy_poison": "التسميم (poison): كل مخرجات معاملة لها مدخل متتبَّع تُعدّ متتبَّعة بالكامل (حدّ أعلى).",
    "policy_seniority": "الأسبقية (seniority): تخرج القيمة المتتبَّعة أولًا.",
    "policy_fifo": "الوارد أولًا يخرج أولًا (FIFO).",
    "policy_lifo": "الوارد أخيرًا يخرج أولًا (LIFO).",
    "coverage_intro": "ما يستند إليه هذا التقرير، وما افتُرض، وما تعذّرت معرفته:",
    "ev_data": "البيانات", "ev_held": "معنى «محتفظ به»", "ev_partial_seed": "نقطة بداية جزئية",
    "ev_synthesised_ids": "معرّفات مُصطنَعة", "ev_policy": "السياسة", "ev_thresholds": "العتبات",
    "ev_assumed_opening_balances": "أرصدة افتتاحية مفترضة", "ev_coverage": "التغطية",
    "entity": "الخدمة المستلِمة", "category": "الفئة", "amount": "المبلغ", "share": "النسبة",
    "first_seen": "أول ظهور", "transfers": "التحويلات", "no_sinks": "لم تصل أي قيمة متتبَّعة إلى خدمة معروفة.",
    "path_n": "مسار الإثبات {n}", "hop": "القفزة", "transaction": "المعاملة", "address": "العنوان",
    "traced": "المتتبَّع", "time": "الوقت", "addresses": "العناوين", "transactions": "المعاملات",
    "appendix_intro": "كل عنوان ومعاملة وردت أعلاه. المعرّفات الموسومة [مُصطنَع] أنشأها chaintrace لمصدر بلا "
                      "معرّفات معاملات، وهي ليست معرّفات على السلسلة.",
    "synthesised": "مُصطنَع",
    "case": "القضية", "analysts": "المحلّلون", "opened": "تاريخ الفتح", "h_case": "سجلّ القضية (سجلّ تدقيق لا يُعدَّل)",
    "analyst": "المحلّل", "action": "الإجراء",
}


EN.update({
    "h_flow": "Flow of the traced value", "flow_seeded": "Seeded", "flow_sinks": "Reached services",
    "flow_held": "Still held", "flow_stopped": "Not followed", "flow_fees": "Fees", "flow_other": "{n} other services",
    "flow_intro": "From the seeds (left) to what became of the value (middle) and the services that received it "
                  "(right); band widths are proportional to the value, figures rounded (the tables give them exactly).",
    "no_flow": "No traced value.",
    "h_spread": "Uncertainty: the spread between taint policies",
    "spread_not_run": "The trace was not re-run under the other policies: the spread is not known.",
    "spread_error": "The other policies could not be run:",
    "spread_summary": "Under the {n} policies the tracer supports, the value reaching services ranges from {lo} "
                      "({lo_p}) to {hi} ({hi_p}); the value still held ranges from {held_lo} to {held_hi}. This "
                      "range is the uncertainty of the attribution: no policy is the truth.",
    "services": "Services", "this_report": "this report", "not_run": "not run", "range": "Range (min – max)",
    "spread_entities": "Largest services: value received under the lowest and the highest policy",
    "minimum": "Minimum", "maximum": "Maximum",
    "h_timeline": "Timeline", "date": "Date", "event": "Event", "tl_data_begins": "The data begins",
    "tl_data_ends": "The data ends (the horizon of “still held”)",
    "tl_first_move": "First traced transfer on the evidence paths",
    "tl_reached": "Traced value first reaches {entity} (in all {amount})",
    "tl_listed": "{address} is on a {list} snapshot (listed no later than this date)",
    "tl_entry": "The {list} entry {entity} dates from this day (not the address)",
    "tl_case": "Case: {action} by {analyst}",
    "h_sanctions": "Sanctions and attribution",
    "attr_not_run": "The intelligence registry was not consulted.",
    "attr_error": "The intelligence registry could not be read:",
    "attr_intro": "What the intelligence registry holds on the addresses cited, with its sources; sanctions status "
                  "as of {at} from the imported list history:",
    "snapshots": "{n} snapshot(s)", "attr_none": "The registry holds nothing on the addresses cited.",
    "role": "Role", "sanctioned": "Sanctioned", "attribution_sources": "Lists, labels and incidents (sources)",
    "yes": "yes", "no": "no", "date_precision": "Date precision", "source": "source",
    "h_screening": "Screening results of the case", "screen_none": "No screening result in the case.",
    "screen_ran": "run from the case", "screen_added": "added from a file", "subject": "Subject", "risk": "Risk",
    "score": "Score", "notes": "Notes", "h_notes": "Notes and exhibits", "notes_none": "No notes.",
    "h_exhibits": "Exhibits", "name": "Name", "description": "Description", "bytes": "Bytes",
    "case_dates": "Case dates", "last_entry": "last entry",
    "h_service_sources": "Receiving services: the trace's attribution and its sources", "labels": "Labels",
    "via_cluster": "{n} transfer(s) attributed through the address's cluster",
    "h_registry": "Addresses cited: sanctions lists, labels and incidents in the registry",
    "status_open": "open", "status_investigating": "investigating", "status_closed": "closed",
    "role_seed": "seed", "role_case_seed": "case seed", "role_sink": "receiving service", "role_holding": "holding",
})

AR.update({
    "h_flow": "مسار القيمة المتتبَّعة", "flow_seeded": "المبلغ المتتبَّع", "flow_sinks": "وصل إلى الخدمات",
    "flow_held": "ما زال محتفظًا به", "flow_stopped": "توقّف تتبّعه", "flow_fees": "الرسوم", "flow_other": "{n} خدمة أخرى",
    "flow_intro": "من نقاط البداية إلى ما آلت إليه القيمة ثم إلى الخدمات التي تلقّتها (من اليمين إلى اليسار)؛ عرض "
                  "كل شريط يتناسب مع القيمة، والأرقام مقرّبة (الجداول تعطيها بدقة).",
    "no_flow": "لا توجد قيمة متتبَّعة.",
    "h_spread": "عدم اليقين: الفرق بين سياسات التتبّع",
    "spread_not_run": "لم يُعَد التتبّع بالسياسات الأخرى: مقدار الفرق غير معروف.",
    "spread_error": "تعذّر تشغيل السياسات الأخرى:",
    "spread_summary": "وفق السياسات الـ{n} التي يدعمها المتتبِّع، تتراوح القيمة التي وصلت إلى الخدمات بين {lo} "
                      "({lo_p}) و{hi} ({hi_p})، وتتراوح القيمة المحتفظ بها بين {held_lo} و{held_hi}. هذا المدى هو "
                      "مقدار عدم اليقين في النسبة: لا توجد سياسة تمثّل الحقيقة وحدها.",
    "services": "الخدمات", "this_report": "هذا التقرير", "not_run": "لم تُشغَّل", "range": "المدى (الأدنى – الأعلى)",
    "spread_entities": "أكبر الخدمات: القيمة المستلمة وفق أدنى سياسة وأعلاها",
    "minimum": "الأدنى", "maximum": "الأعلى",
    "h_timeline": "التسلسل الزمني", "date": "التاريخ", "event": "الحدث", "tl_data_begins": "بداية البيانات",
    "tl_data_ends": "نهاية البيانات (حدّ «محتفظ به»)",
    "tl_first_move": "أول تحويل متتبَّع على مسارات الإثبات",
    "tl_reached": "أول وصول لقيمة متتبَّعة إلى {entity} (المجموع {amount})",
    "tl_listed": "{address} مدرج في لقطة من {list} (أُدرج في موعد لا يتجاوز هذا التاريخ)",
    "tl_entry": "يعود قيد {entity} في {list} إلى هذا اليوم (القيد لا العنوان)",
    "tl_case": "القضية: {action} بواسطة {analyst}",
    "h_sanctions": "العقوبات والإسناد",
    "attr_not_run": "لم يُرجَع إلى سجلّ المعلومات الاستخبارية.",
    "attr_error": "تعذّرت قراءة سجلّ المعلومات الاستخبارية:",
    "attr_intro": "ما يحمله سجلّ المعلومات عن العناوين الواردة في التقرير مع مصادره؛ حالة العقوبات في {at} وفق "
                  "تاريخ القوائم المستوردة:",
    "snapshots": "{n} لقطة", "attr_none": "لا يحمل السجلّ شيئًا عن العناوين الواردة في التقرير.",
    "role": "الدور", "sanctioned": "خاضع للعقوبات", "attribution_sources": "القوائم والتصنيفات والحوادث (المصادر)",
    "yes": "نعم", "no": "لا", "date_precision": "دقّة التاريخ", "source": "المصدر",
    "h_screening": "نتائج الفحص في القضية", "screen_none": "لا توجد نتائج فحص في القضية.",
    "screen_ran": "شُغِّل من القضية", "screen_added": "أُضيف من ملف", "subject": "المفحوص", "risk": "الخطورة",
    "score": "الدرجة", "notes": "ملاحظات", "h_notes": "الملاحظات والمستندات", "notes_none": "لا توجد ملاحظات.",
    "h_exhibits": "المستندات", "name": "الاسم", "description": "الوصف", "bytes": "البايتات",
    "case_dates": "تواريخ القضية", "last_entry": "آخر قيد",
    "h_service_sources": "الخدمات المستلِمة: إسناد التتبّع ومصادره", "labels": "التصنيفات",
    "via_cluster": "{n} تحويل أُسند عبر مجموعة العنوان",
    "h_registry": "العناوين الواردة: قوائم العقوبات والتصنيفات والحوادث في السجلّ",
    "status_open": "مفتوحة", "status_investigating": "قيد التحقيق", "status_closed": "مغلقة",
    "role_seed": "نقطة بداية", "role_case_seed": "نقطة بداية في القضية", "role_sink": "خدمة مستلِمة",
    "role_holding": "رصيد محتفظ به",
})

class T:
    """``t(key, **values)``: the sentence in the language, values inserted as given (already HTML)."""

    def __init__(self, lang: str):
        self.lang = lang
        self.words = AR if lang == "ar" else EN

    def __call__(self, key: str, **values: str) -> str:
        text = self.words.get(key) or EN.get(key) or key
        return escape(text).format(**values) if values else escape(text)

    def plain(self, key: str, **values: str) -> str:
        """The sentence without HTML escaping (for SVG text, which the caller escapes)."""
        text = self.words.get(key) or EN.get(key) or key
        return text.format(**values) if values else text
