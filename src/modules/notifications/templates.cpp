// Built-in wording (English and Arabic), placeholders, and the categories
// people choose channels for.
#include <cctype>

#include "modules/notifications/module.hpp"

namespace souq::notifications {
namespace {

using Text = std::map<std::string, std::pair<std::string, std::string>>;

const std::vector<std::string> kOfferVars = {"request_title", "price", "buyer_name", "seller_name"};
const std::vector<std::string> kDealVars = {"title", "amount", "state", "reason", "buyer_name", "seller_name", "actor_name"};

TemplateType offer(std::string type, Text text) { return {std::move(type), "offers", kOfferVars, std::move(text)}; }
TemplateType deal(std::string type, Text text) { return {std::move(type), "deals", kDealVars, std::move(text)}; }
TemplateType order(std::string type, Text text) { return {std::move(type), "orders", kDealVars, std::move(text)}; }

std::vector<TemplateType> make_catalog() {
  return {
      offer("offer.created", {{"en", {"New offer on “{{request_title}}”", "{{seller_name}} offered {{price}}."}},
                              {"ar", {"عرض جديد على «{{request_title}}»", "قدّم {{seller_name}} عرضًا بقيمة {{price}}."}}}),
      offer("offer.withdrawn",
            {{"en", {"Offer withdrawn", "{{seller_name}} withdrew their offer on “{{request_title}}”."}},
             {"ar", {"تم سحب عرض", "سحب {{seller_name}} عرضه على «{{request_title}}»."}}}),
      offer("offer.accepted",
            {{"en", {"Your offer was accepted", "{{buyer_name}} accepted your offer of {{price}} on “{{request_title}}”."}},
             {"ar", {"تم قبول عرضك", "قبل {{buyer_name}} عرضك بقيمة {{price}} على «{{request_title}}»."}}}),
      offer("offer.rejected", {{"en", {"Your offer was declined", "Your offer on “{{request_title}}” was declined."}},
                               {"ar", {"لم يُقبل عرضك", "تم رفض عرضك على «{{request_title}}»."}}}),
      offer("offer.rejected.another_offer_accepted",
            {{"en", {"Another offer was chosen", "The buyer accepted another offer on “{{request_title}}”."}},
             {"ar", {"تم اختيار عرض آخر", "قبل المشتري عرضًا آخر على «{{request_title}}»."}}}),
      offer("offer.rejected.request_cancelled",
            {{"en", {"Request cancelled", "“{{request_title}}” was cancelled, so your offer is closed."}},
             {"ar", {"تم إلغاء الطلب", "أُلغي الطلب «{{request_title}}»، لذا أُغلق عرضك."}}}),
      offer("offer.expired",
            {{"en", {"Your offer expired", "Your offer on “{{request_title}}” expired before the buyer answered."}},
             {"ar", {"انتهت صلاحية عرضك", "انتهت صلاحية عرضك على «{{request_title}}» قبل أن يرد المشتري."}}}),
      {"request.expired", "requests", {"request_title"},
       {{"en", {"Your request expired", "“{{request_title}}” is no longer open to offers."}},
        {"ar", {"انتهت صلاحية طلبك", "لم يعد «{{request_title}}» يستقبل عروضًا."}}}},
      {"request.cancelled", "requests", {"request_title"},
       {{"en", {"Your request was taken down", "Our team cancelled “{{request_title}}”. Contact support if you have questions."}},
        {"ar", {"تم إيقاف طلبك", "ألغى فريقنا «{{request_title}}». تواصل مع الدعم إذا كانت لديك أسئلة."}}}},
      {"message.created", "messages", {"sender_name", "preview"},
       {{"en", {"{{sender_name}}", "{{preview}}"}}, {"ar", {"{{sender_name}}", "{{preview}}"}}}},
      {"message.created.attachment", "messages", {"sender_name"},
       {{"en", {"{{sender_name}}", "Sent an attachment"}}, {"ar", {"{{sender_name}}", "أرسل مرفقًا"}}}},
      {"rating.created", "ratings", {"rater_name", "score"},
       {{"en", {"New rating", "{{rater_name}} rated you {{score}} out of 5."}},
        {"ar", {"تقييم جديد", "قيّمك {{rater_name}} بـ {{score}} من 5."}}}},
      {"report.decided", "moderation", {"decision"},
       {{"en", {"Action taken on your content", "Content you posted was reported and reviewed by our team."}},
        {"ar", {"إجراء بشأن محتواك", "تم الإبلاغ عن محتوى نشرته وراجعه فريقنا."}}}},
      {"report.decided.warn", "moderation", {"decision"},
       {{"en", {"A warning on your account",
                "Content you posted was reported and found to break our rules. Further reports may suspend your account."}},
        {"ar", {"تحذير على حسابك",
                "تم الإبلاغ عن محتوى نشرته وتبيّن أنه يخالف قواعدنا. قد تؤدي بلاغات أخرى إلى إيقاف حسابك."}}}},
      {"report.decided.suspend", "moderation", {"decision"},
       {{"en", {"Your account is suspended",
                "After a report, your account was suspended. Contact support if you think this is a mistake."}},
        {"ar", {"تم إيقاف حسابك", "بعد بلاغ، تم إيقاف حسابك. تواصل مع الدعم إذا كنت تعتقد أن هذا خطأ."}}}},
      // Steps of transactions, named <kind>.<transition> (the process's notify action).
      deal("deal.created", {{"en", {"Deal started: “{{title}}”",
                                    "The offer of {{amount}} was accepted. Arrange the details in the chat."}},
                            {"ar", {"بدأت الصفقة: «{{title}}»", "تم قبول العرض بقيمة {{amount}}. رتّبوا التفاصيل في المحادثة."}}}),
      deal("deal.start", {{"en", {"Work has started", "The seller started work on “{{title}}”."}},
                          {"ar", {"بدأ العمل", "بدأ البائع العمل على «{{title}}»."}}}),
      deal("deal.deliver", {{"en", {"Marked as delivered",
                                    "“{{title}}” was marked as delivered. Please confirm it or report a problem."}},
                            {"ar", {"تم التسليم", "تم تحديد «{{title}}» كمُسلَّم. يرجى التأكيد أو الإبلاغ عن مشكلة."}}}),
      deal("deal.confirm", {{"en", {"Delivery confirmed", "The buyer confirmed delivery of “{{title}}”. The deal is complete."}},
                            {"ar", {"تم تأكيد الاستلام", "أكد المشتري استلام «{{title}}». اكتملت الصفقة."}}}),
      deal("deal.auto_complete", {{"en", {"Deal completed", "“{{title}}” was completed automatically after delivery."}},
                                  {"ar", {"اكتملت الصفقة", "اكتملت «{{title}}» تلقائيًا بعد التسليم."}}}),
      deal("deal.dispute", {{"en", {"A problem was reported", "{{actor_name}} reported a problem with “{{title}}”: {{reason}}. The payment stays held until our team decides."}},
                            {"ar", {"تم الإبلاغ عن مشكلة", "أبلغ {{actor_name}} عن مشكلة في «{{title}}»: {{reason}}. يبقى المبلغ محجوزًا حتى يقرر فريقنا."}}}),
      deal("deal.pay", {{"en", {"Payment received", "{{amount}} for “{{title}}” is held in escrow. You can start work."}},
                        {"ar", {"تم استلام الدفع", "مبلغ {{amount}} لـ«{{title}}» محفوظ في الضمان. يمكنك بدء العمل."}}}),
      deal("deal.resolve_split", {{"en", {"Dispute resolved", "Our team split the payment for “{{title}}” between buyer and seller."}},
                                  {"ar", {"تم حل النزاع", "قسّم فريقنا المبلغ لـ«{{title}}» بين المشتري والبائع."}}}),
      deal("deal.resolve_complete", {{"en", {"Dispute resolved", "Our team resolved the dispute on “{{title}}” as completed."}},
                                     {"ar", {"تم حل النزاع", "حلّ فريقنا النزاع حول «{{title}}» باعتبار الصفقة مكتملة."}}}),
      deal("deal.resolve_cancel", {{"en", {"Dispute resolved", "Our team resolved the dispute on “{{title}}” by refunding the buyer."}},
                                   {"ar", {"تم حل النزاع", "حلّ فريقنا النزاع حول «{{title}}» بإعادة المبلغ إلى المشتري."}}}),
      deal("deal.cancel", {{"en", {"Deal cancelled", "“{{title}}” was cancelled: {{reason}}"}},
                           {"ar", {"تم إلغاء الصفقة", "أُلغيت «{{title}}»: {{reason}}"}}}),
      deal("deal.operator_cancel", {{"en", {"Deal cancelled by our team", "“{{title}}” was cancelled: {{reason}}"}},
                                    {"ar", {"ألغى فريقنا الصفقة", "أُلغيت «{{title}}»: {{reason}}"}}}),
      deal("deal.fund", {{"en", {"Payment received", "{{amount}} for “{{title}}” is held in escrow."}},
                         {"ar", {"تم استلام الدفع", "مبلغ {{amount}} لـ«{{title}}» محفوظ في الضمان."}}}),
      deal("deal.payment_timeout", {{"en", {"Deal cancelled: not paid", "“{{title}}” was cancelled because payment did not arrive in time."}},
                                    {"ar", {"أُلغيت الصفقة لعدم الدفع", "أُلغيت «{{title}}» لعدم وصول الدفع في الوقت المحدد."}}}),
      deal("deal.withdraw", {{"en", {"The buyer withdrew", "The buyer withdrew from “{{title}}” before paying: {{reason}}"}},
                             {"ar", {"انسحب المشتري", "انسحب المشتري من «{{title}}» قبل الدفع: {{reason}}"}}}),
      deal("deal.refund", {{"en", {"Refunded", "{{amount}} for “{{title}}” was refunded to the buyer."}},
                           {"ar", {"تم الاسترداد", "تمت إعادة {{amount}} لـ«{{title}}» إلى المشتري."}}}),
      deal("deal.release", {{"en", {"Funds released", "The buyer released {{amount}} for “{{title}}”."}},
                            {"ar", {"تم تحرير المبلغ", "حرّر المشتري مبلغ {{amount}} لـ«{{title}}»."}}}),
      deal("deal.auto_release", {{"en", {"Funds released", "{{amount}} for “{{title}}” was released automatically after delivery."}},
                                 {"ar", {"تم تحرير المبلغ", "تم تحرير {{amount}} لـ«{{title}}» تلقائيًا بعد التسليم."}}}),
      deal("deal.resolve_release", {{"en", {"Dispute resolved", "Our team released the funds for “{{title}}” to the seller."}},
                                    {"ar", {"تم حل النزاع", "حرّر فريقنا المبلغ لـ«{{title}}» إلى البائع."}}}),
      deal("deal.resolve_refund", {{"en", {"Dispute resolved", "Our team refunded the buyer for “{{title}}”."}},
                                   {"ar", {"تم حل النزاع", "أعاد فريقنا المبلغ لـ«{{title}}» إلى المشتري."}}}),
      // Orders (the purchase process).
      order("order.pay", {{"en", {"Order paid: “{{title}}”", "{{amount}} is paid and held until delivery."}},
                          {"ar", {"تم دفع الطلب: «{{title}}»", "تم دفع {{amount}} ويُحتفظ به حتى التسليم."}}}),
      order("order.payment_timeout", {{"en", {"Order cancelled: not paid", "“{{title}}” was cancelled because payment did not arrive within 15 minutes."}},
                                      {"ar", {"أُلغي الطلب: لم يُدفع", "أُلغي «{{title}}» لأن الدفع لم يصل خلال 15 دقيقة."}}}),
      order("order.cancel", {{"en", {"Order cancelled", "“{{title}}” was cancelled before payment."}},
                             {"ar", {"أُلغي الطلب", "أُلغي «{{title}}» قبل الدفع."}}}),
      order("order.cancel_paid", {{"en", {"Order cancelled and refunded", "“{{title}}” was cancelled: {{reason}}. {{amount}} is back in the buyer's wallet."}},
                                  {"ar", {"أُلغي الطلب واسترُدّ المبلغ", "أُلغي «{{title}}»: {{reason}}. أُعيد {{amount}} إلى محفظة المشتري."}}}),
      order("order.ship", {{"en", {"Your order has shipped", "“{{title}}” is on its way."}},
                           {"ar", {"تم شحن طلبك", "«{{title}}» في الطريق إليك."}}}),
      order("order.deliver", {{"en", {"Your order was delivered", "“{{title}}” was delivered. Confirm receipt, or report a problem."}},
                              {"ar", {"تم تسليم طلبك", "تم تسليم «{{title}}». أكّد الاستلام أو أبلغ عن مشكلة."}}}),
      order("order.confirm", {{"en", {"Receipt confirmed", "The buyer confirmed receiving “{{title}}”. The payment is released to you."}},
                              {"ar", {"تم تأكيد الاستلام", "أكّد المشتري استلام «{{title}}». تم تحويل المبلغ إليك."}}}),
      order("order.auto_complete", {{"en", {"Order completed", "“{{title}}” was completed automatically after delivery."}},
                                    {"ar", {"اكتمل الطلب", "اكتمل «{{title}}» تلقائيًا بعد التسليم."}}}),
      order("order.dispute", {{"en", {"A problem was reported", "{{actor_name}} reported a problem with “{{title}}”: {{reason}}. The payment stays held until our team decides."}},
                              {"ar", {"تم الإبلاغ عن مشكلة", "أبلغ {{actor_name}} عن مشكلة في «{{title}}»: {{reason}}. يبقى المبلغ محجوزًا حتى يقرر فريقنا."}}}),
      // Money: payouts and payments that failed or were held for review.
      {"payout.paid", "deals", {"amount", "destination"},
       {{"en", {"Payout sent", "{{amount}} is on its way to {{destination}}."}},
        {"ar", {"تم إرسال التحويل", "مبلغ {{amount}} في الطريق إلى {{destination}}."}}}},
      {"payout.failed", "deals", {"amount", "destination", "failure_message"},
       {{"en", {"Payout failed", "{{amount}} could not be sent to {{destination}} and is back in your wallet: {{failure_message}}"}},
        {"ar", {"تعذّر التحويل", "تعذّر إرسال {{amount}} إلى {{destination}} وأُعيد إلى محفظتك: {{failure_message}}"}}}},
      {"payment.failed", "deals", {"amount"},
       {{"en", {"Payment failed", "Your payment of {{amount}} did not go through. Nothing was charged; you can try again."}},
        {"ar", {"فشل الدفع", "لم تتم عملية الدفع بقيمة {{amount}}. لم يُخصم شيء، ويمكنك المحاولة مرة أخرى."}}}},
      {"payment.flagged", "deals", {"amount"},
       {{"en", {"Payment under review", "Your payment of {{amount}} arrived with details that do not match. Our team is checking it."}},
        {"ar", {"الدفع قيد المراجعة", "وصل دفعك بقيمة {{amount}} بتفاصيل غير مطابقة. يراجعه فريقنا الآن."}}}},
      // Any other step of any process.
      deal("transaction.updated", {{"en", {"Update on “{{title}}”", "There is news about “{{title}}”."}},
                                   {"ar", {"تحديث على «{{title}}»", "هناك جديد بخصوص «{{title}}»."}}}),
  };
}

bool identifier(const std::string& s) {
  if (s.empty() || !(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
      return false;
  return true;
}

// Whether UTF-8 text holds a letter of a right-to-left script (Hebrew,
// Arabic, Syriac, Thaana, NKo … U+0590–U+08FF; presentation forms) or a
// directional mark or control (which must not leak into the template).
bool has_rtl(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80 || i + 1 >= s.size()) continue;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
    else if ((c & 0xF0) == 0xE0 && i + 2 < s.size())
      cp = ((c & 0x0F) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
           (static_cast<unsigned char>(s[i + 2]) & 0x3F);
    if ((cp >= 0x0590 && cp <= 0x08FF) || (cp >= 0xFB1D && cp <= 0xFDFF) || (cp >= 0xFE70 && cp <= 0xFEFF) ||
        cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
      return true;
  }
  return false;
}

// Calls out(literal) and var(name) in order; returns why the text is malformed.
template <typename Literal, typename Var>
std::string scan(const std::string& text, Literal out, Var var) {
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find("{{", i), close = text.find("}}", i);
    if (close < open) return "has \"}}\" without \"{{\"";
    if (open == std::string::npos) {
      out(text.substr(i));
      break;
    }
    out(text.substr(i, open - i));
    size_t end = text.find("}}", open + 2);
    if (end == std::string::npos) return "has \"{{\" without \"}}\"";
    std::string name = text.substr(open + 2, end - open - 2);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (!identifier(name)) return "has a placeholder that is not a name: {{" + name + "}}";
    var(name);
    i = end + 2;
  }
  return "";
}

}  // namespace

const std::vector<TemplateType>& built_in_templates() {
  static const std::vector<TemplateType> catalog = make_catalog();
  return catalog;
}

const TemplateType* find_template_type(const std::string& type) {
  for (const auto& t : built_in_templates())
    if (t.type == type) return &t;
  return nullptr;
}

std::string check_placeholders(const std::string& text, const std::vector<std::string>& allowed,
                               std::vector<std::string>& unknown) {
  return scan(
      text, [](const std::string&) {},
      [&](const std::string& name) {
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end() &&
            std::find(unknown.begin(), unknown.end(), name) == unknown.end())
          unknown.push_back(name);
      });
}

std::string render(const std::string& text, const std::map<std::string, std::string>& values, bool rtl) {
  std::string out;
  std::string fault = scan(
      text, [&](const std::string& literal) { out += literal; },
      [&](const std::string& name) {
        auto it = values.find(name);
        if (it == values.end() || it->second.empty()) return;
        if (rtl || has_rtl(it->second)) out += "\u2068" + it->second + "\u2069";  // FSI … PDI
        else out += it->second;
      });
  return fault.empty() ? out : text;  // templates are checked when saved; never fail a delivery on one
}

bool is_rtl_locale(const std::string& locale) {
  std::string language = locale.substr(0, locale.find_first_of("-_"));
  for (const char* l : {"ar", "he", "fa", "ur", "ps", "sd", "ckb", "yi", "dv"})
    if (language == l) return true;
  return false;
}

std::vector<std::string> locale_chain(const std::string& locale) {
  std::vector<std::string> out;
  auto add = [&](const std::string& l) {
    if (!l.empty() && std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
  };
  add(locale);
  add(locale.substr(0, locale.find_first_of("-_")));
  add("en");
  return out;
}

const std::vector<Category>& categories() {
  static const std::vector<Category> list = {
      {"offers", {{"in_app", true}, {"push", true}, {"email", true}}, {}},
      {"requests", {{"in_app", true}, {"push", true}, {"email", false}}, {}},
      {"deals", {{"in_app", true}, {"push", true}, {"email", true}}, {}},
      {"orders", {{"in_app", true}, {"push", true}, {"email", true}}, {}},
      // Chat has its own unread counts; a line reaches someone away by push.
      {"messages", {{"in_app", false}, {"push", true}, {"email", false}}, {}},
      {"ratings", {{"in_app", true}, {"push", true}, {"email", false}}, {}},
      // What happens to one's account must reach them.
      {"moderation", {{"in_app", true}, {"push", true}, {"email", true}}, {"in_app", "email"}},
  };
  return list;
}

}  // namespace souq::notifications
