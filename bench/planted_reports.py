"""Synthetic annual reports with planted key facts, for measuring what a summary keeps.

A report is a title line and `## N. Topic` sections of routine administrative prose (meetings held,
procedures reviewed, files archived) that a good summary can drop. Into some sections one key fact
sentence is planted: a revenue figure, a plant closure in a named town, a named new chief
executive. Each fact carries the keys a summary must contain to count as having kept it.
Everything is drawn from a seeded `random.Random`, so a (sections, language, seed) triple always
gives the same report. All names are invented.

    from bench.planted_reports import make_report
    report = make_report(12, "zh", seed=1)      # ~11K cl100k tokens, 8 planted facts
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from longdoc.chunking import count_tokens

Language = str  # "en" or "zh"
POSITIONS = ("start", "middle", "end")


@dataclass(frozen=True)
class PlantedFact:
    """One key sentence in one section, and the strings a summary must contain to have kept it."""

    section: int  # 1-based
    sentence: str  # exactly as it stands in the report's text
    keys: list[str]  # every one must appear in a summary that kept the fact
    number_keys: list[str]  # the keys that are numbers: all that survives a summary in another language
    label: str = ""  # what kind of fact it is ("revenue", "plant closure"), for reading results
    position: str = "middle"  # where in its section: start, middle or end


@dataclass(frozen=True)
class PlantedReport:
    """A generated report: its text and the facts planted in it."""

    text: str
    facts: list[PlantedFact]
    language: Language
    sections: int
    seed: int
    organisation: str
    topics: list[str] = field(default_factory=list)


# -- sizes ---------------------------------------------------------------------------------------

# Routine tokens per section, so that 8 sections give ~3K tokens, 12 give ~11K and 24 give ~37K in
# total (headings and facts add ~40 a section): longer documents have longer sections, as real ones
# do. Linear in between.
_SECTION_TOKENS = ((8, 335), (12, 890), (24, 1530))


def section_tokens(sections: int) -> int:
    """cl100k tokens of routine text to aim for in each section of a report with `sections` sections."""
    points = _SECTION_TOKENS
    if sections <= points[0][0]:
        return points[0][1]
    for (low, low_tokens), (high, high_tokens) in zip(points, points[1:]):
        if sections <= high:
            return round(low_tokens + (high_tokens - low_tokens) * (sections - low) / (high - low))
    return points[-1][1]


def fact_count(sections: int) -> int:
    """How many sections get a key fact: all of a short report's, about half of a long one's (8 at least)."""
    return sections if sections <= 8 else max(8, sections // 2)


# -- name pools (invented) -----------------------------------------------------------------------

EN_ORGS = [
    "Ashgrove Industrial Holdings", "Pemberton Lisle Group", "Corvenna Manufacturing", "Wexmoor Utilities",
    "Thistledown Foods", "Bellcourt Engineering", "Redmere Chemicals", "Altamont Rail Services",
    "Sorrel Bay Shipping", "Greyfriars Instruments", "Hollin and Marsh", "Kestrel Ridge Energy",
    "Northam Tool Works", "Varga Household Goods",
]
EN_TOWNS = [
    "Quellmoor", "Brantwick", "Oskerfield", "Tamberlay", "Varrow", "Hessling Cove", "Dunmarrow", "Pellinor",
    "Corvane", "Kettleby Marsh", "Ashcombe Reach", "Wrenfield", "Saltmere", "Glenhollow", "Fennick",
    "Marlow Bend", "Ystrad Vale", "Lorrimer", "Brackenholt", "Tessaly", "Carrowby", "Holloway Point",
    "Vinterbrook", "Ombersley Flats", "Raskell", "Durnhelm", "Featherstone Gap", "Nettlecombe",
    "Orrin Falls", "Selwick",
]
EN_FIRST_NAMES = [
    "Marisol", "Tobias", "Ingrid", "Desmond", "Priya", "Anselm", "Colette", "Rafferty", "Yusuf", "Henrike",
    "Lorcan", "Beatrix", "Osei", "Wilhelmina", "Teodor", "Nadia", "Caspian", "Imelda", "Rupert", "Sunniva",
    "Alaric", "Fenella", "Kofi", "Mireille", "Ewan", "Leocadia", "Bram", "Ottilie", "Dashiell", "Rosalind",
]
EN_SURNAMES = [
    "Vandersloot", "Achterberg", "Quennell", "Mbatha", "Trelawny", "Oyelaran", "Castellane", "Pomfret",
    "Strudwick", "Halloran", "Ravensworth", "Ferreira", "Lindqvist", "Okafor", "Brannigan", "Dimitriou",
    "Hathersage", "Kowalczyk", "Montague", "Szabo", "Whitlock", "Yamaguchi", "Abernethy", "Castellanos",
    "Delacroix", "Estergaard", "Fairbairn", "Gallacher", "Holmqvist", "Iredale",
]
EN_COMPANY_STEMS = [
    "Halbrook", "Vantreece", "Orlemann", "Quistgard", "Pellworth", "Tarnhill", "Brisancourt", "Dravenport",
    "Elmcastle", "Fenwright", "Gorsebury", "Hexley", "Ironvale", "Jessamine", "Kittering", "Lomborough",
    "Nethercott", "Oakhaven", "Pryorwood", "Quarrington", "Rookesby", "Stanmere", "Ulverdale", "Yarrowby",
    "Zellerman", "Aldercroft", "Birkenshaw", "Copperleigh", "Dunstanbury", "Everholt",
]
EN_COMPANY_SUFFIXES = [
    "Polymers", "Logistics", "Foods", "Systems", "Metals", "Retail", "Freight", "Components", "Pharma",
    "Textiles", "Packaging", "Electronics",
]
EN_PRODUCTS = [
    "Lumora", "Vextal", "Quillon", "Brisa", "Tandrel", "Oxiver", "Marrowlite", "Sennet", "Pyrelle", "Zenthra",
    "Orvane", "Kestrix", "Halcyra", "Dunelle", "Ferrow", "Glimmet", "Novaro", "Trelliq", "Wyvar", "Caldrin",
]
EN_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
]

ZH_ORGS = [
    "远澜控股集团", "海岳实业集团", "北川能源股份有限公司", "青衡制造集团", "南屿食品集团", "东岑化学工业集团",
    "华泓轨道交通装备公司", "金瓯港航集团", "云栖仪器股份有限公司", "松岩建材集团", "合沣家居用品集团",
    "嵩川重型机械集团",
]
ZH_TOWNS = [
    "临溪市", "望川镇", "梧岗县", "石门湾", "青陂镇", "柳渡市", "云岫县", "白沙渡", "南峤镇", "桐坞镇",
    "苇塘市", "鹤汀县", "雁栖湾", "松陵渡", "槐荫镇", "北漪市", "芦湾县", "溪口坪", "金沙坳", "凤鸣川",
    "杏林坡", "漳泉镇", "碧川县", "兰皋市", "青萝湾", "莲塘镇", "岚山口", "乌桕岭", "澹台镇", "竹溪坪",
]
ZH_SURNAMES = list("周韩陆沈顾严贺邵苏程魏蒋宋方林唐许傅钟曹")
ZH_GIVEN_NAMES = [
    "明远", "若溪", "景行", "思衡", "书瑶", "启航", "知秋", "嘉木", "海宁", "文澜", "亦舟", "清越", "子谦",
    "晓岚", "致远", "雨桐", "维钧", "慕白", "一鸣", "芷若",
]
ZH_COMPANY_STEMS = [
    "澄川", "岚晟", "启衡", "拓远", "瀚邦", "睿恒", "泓川", "朗越", "昶隆", "峻丰", "沛霖", "曜华", "德沣",
    "骁腾", "铭沅", "璟泰", "禾森", "淞岳", "耀岑", "翊航", "钧和", "荣屹", "川沐", "柏睿", "凯澜", "悦丰",
    "致岭", "昱辰", "晟蓝", "恒屿",
]
ZH_COMPANY_SUFFIXES = [
    "精密机械有限公司", "物流股份有限公司", "食品有限公司", "化工有限公司", "电子科技有限公司", "包装材料有限公司",
    "医药有限公司", "纺织有限公司", "金属制品有限公司", "零售连锁有限公司",
]
ZH_PRODUCTS = [
    "星澜", "云帆", "青禾", "曜石", "澄光", "听涛", "拾光", "晨曦", "驭风", "知微", "栖木", "雪松", "流萤",
    "远山", "清泉", "墨羽", "银杏", "长庚", "岚影", "朝露",
]

# -- section topics ------------------------------------------------------------------------------

EN_TOPICS = [
    "Revenue", "Operations", "Safety", "Research", "Procurement", "Human Resources", "Information Technology",
    "Legal Affairs", "Facilities", "Finance", "Internal Audit", "Sales and Marketing", "Customer Service",
    "Logistics", "Quality Assurance", "Environment", "Governance", "Risk Management", "Treasury",
    "Investor Relations", "Communications", "Training and Development", "Health and Wellbeing", "Compliance",
    "Property", "Fleet Management", "Data Protection", "Community Relations", "Supply Chain",
    "Product Development",
]
ZH_TOPICS = [
    "营业收入", "生产运营", "安全生产", "研究开发", "采购管理", "人力资源", "信息技术", "法务事务", "设施管理",
    "财务管理", "内部审计", "市场营销", "客户服务", "物流配送", "质量管理", "环境保护", "公司治理", "风险管理",
    "资金管理", "投资者关系", "企业宣传", "培训发展", "员工健康", "合规管理", "资产管理", "车辆管理", "数据保护",
    "社区关系", "供应链", "产品开发",
]

# -- key fact templates --------------------------------------------------------------------------
# Slots: {org} is the report's organisation (never a key). {town} {person} {company} {product} are
# names, {money} {pct} {staff} ... numbers; a trailing digit makes a second slot of the same kind
# ({person2}). A leading underscore marks a slot that is written but is not a key ({_year}).

EN_FACTS: list[tuple[str, str]] = [
    ("revenue", "Group revenue for the year came to ${money} million, {_pct} higher than a year earlier."),
    ("new plant", "{org} will open a new assembly plant in {town}, where {units} jobs are to be created by {_year}."),
    ("acquisition", "Following the acquisition of {company}, total headcount rose to {staff} employees."),
    ("main risk", "The board regards the possible loss of its largest distributor, {company}, as the main risk "
                  "to next year's results, since that distributor accounts for {pct} of sales."),
    ("dividend", "The directors propose a final dividend of ${share} per share, payable in {_month}."),
    ("injury rate", "The recordable injury rate fell to {rate} per 200,000 hours worked, the lowest figure on record."),
    ("research focus", "Research spending will concentrate on solid-state battery cells, with a budget of "
                       "${money} million over three years."),
    ("guidance", "For next year, management expects revenue of about ${bn} billion, give or take {_ratio} percent."),
    ("new chief executive", "{person} was appointed chief executive in {_month}, the first outside hire to lead {org}."),
    ("lawsuit settled", "The lawsuit brought by {company} over a supply contract was settled for ${money} million."),
    ("product launch", "The {product} portable analyser goes on sale on {_day} {_month} {_year} at a list price of ${units}."),
    ("major contract", "{company} signed a five-year service contract worth ${money} million, the largest in the "
                       "history of {org}."),
    ("plant closure", "The packaging plant in {town} will close at the end of {_month}, affecting {units} staff."),
    ("bond issue", "{org} issued ${money} million of seven-year bonds carrying a coupon of {coupon} percent."),
    ("data breach", "A data breach in {_month} exposed the records of {big} customers, and the regulator has "
                    "opened an inquiry."),
    ("emissions", "Direct carbon emissions were cut by {pct} compared with the baseline year."),
    ("net debt", "Net debt stood at ${money} million at the year end, about {_ratio} times operating profit."),
    ("complaints", "Customer complaints rose to {units} after the change of billing system, almost double the "
                   "level of the year before."),
    ("distribution centre", "The distribution centre at {town}, built for ${money} million, began shipping in {_month}."),
    ("margin", "Operating margin narrowed to {margin} as energy costs climbed."),
    ("new chair", "{_person} will step down as chair after the annual meeting and will be succeeded by {person}, "
                  "who has sat on the board for {_n} years."),
    ("recall", "A recall of {big} units of the {product} electric kettle cost the company ${_money} million."),
    ("backlog", "The order backlog at the year end was ${bn} billion, enough for about {_months} months of production."),
    ("turnover", "Staff turnover reached {margin}, and {units} engineering posts remain unfilled."),
    ("fine", "The competition authority fined {org} ${money} million for sharing pricing information with {company}."),
    ("joint venture", "A joint venture with {company} to build battery packs in {town} received final approval "
                      "in {_month}."),
    ("pension deficit", "The pension deficit grew to ${money} million after the discount rate was lowered."),
    ("capital spending", "Capital spending for the coming year is budgeted at ${money} million, most of it for the "
                         "site at {town}."),
    ("share buyback", "The company bought back {_ratio} percent of its own shares for a total of ${money} million."),
    ("water use", "Water use at the plants fell by {pct}, meeting the target two years early."),
    ("subscriptions", "The {product} subscription service gained {big} paying users in its first year."),
    ("on-time delivery", "On-time delivery improved to {ontime} of orders once the warehouse at {town} went live."),
    ("fire", "A fire at the {town} works in {_month} halted production for {_weeks} weeks and caused losses of "
             "${money} million."),
    ("city contract", "The company won a ${money} million contract from the city of {town} to maintain its tram fleet."),
    ("regional sales", "Sales in the {town} region fell by {pct} after the main wholesaler there closed."),
    ("supply deal", "{company} agreed to supply all of the group's aluminium until {_year} at a fixed price of "
                    "${price} per tonne."),
    ("research team", "{person}, the head of research, leads a team of {units} scientists working on "
                      "enzyme-based plastics recycling."),
    ("flood claim", "Insurance claims for the flood in {_month} are expected to recover ${money} million."),
]

ZH_FACTS: list[tuple[str, str]] = [
    ("营业收入", "本年度集团营业收入达到{yi}亿元，比上年增长{_pct}%。"),
    ("新建工厂", "{org}将在{town}新建一座装配工厂，预计到{_year}年新增就业岗位{units}个。"),
    ("收购", "完成对{company}的收购后，公司员工总数增至{ren}人。"),
    ("主要风险", "董事会认为，最大经销商{company}可能终止合作是明年业绩面临的首要风险，该经销商贡献了{pct}%的销售额。"),
    ("股息", "董事会建议派发末期股息每股{share}元，预计于{_month}月发放。"),
    ("工伤率", "全年可记录工伤率降至每20万工时{rate}起，为有记录以来的最低水平。"),
    ("研发重点", "今后三年的研发投入将集中在固态电池电芯上，预算合计{yi}亿元。"),
    ("业绩指引", "管理层预计明年营业收入约为{yi}亿元，上下浮动不超过{_ratio}%。"),
    ("新任总裁", "董事会任命{person}为首席执行官，自{_month}月1日起接替创始人，其年度薪酬上限为{pay}万元。"),
    ("诉讼和解", "{company}就供货合同提起的诉讼已经和解，公司支付和解金{wan}万元。"),
    ("新品上市", "{product}便携式检测仪将于{_year}年{_month}月{_day}日上市，建议零售价{units}元。"),
    ("重大合同", "公司与{company}签订了为期五年的服务合同，合同金额{yi}亿元，是公司历史上最大的一笔订单。"),
    ("关闭工厂", "位于{town}的包装厂将于{_month}月底关闭，涉及员工{units}名。"),
    ("发行债券", "{org}发行了{yi}亿元七年期公司债券，票面利率为{coupon}%。"),
    ("数据泄露", "{_month}月发生的数据泄露事件导致{big}名客户的信息外泄，监管部门已经立案调查。"),
    ("碳排放", "与基准年相比，直接碳排放量减少了{pct}%。"),
    ("净债务", "年末净债务为{yi}亿元，约为营业利润的{_ratio}倍。"),
    ("客户投诉", "更换计费系统后，全年客户投诉增至{units}件，几乎是上年的两倍。"),
    ("物流中心", "投资{yi}亿元建设的{town}物流中心已于{_month}月开始发货。"),
    ("利润率", "受能源成本上涨影响，营业利润率收窄至{margin}%。"),
    ("新任董事长", "{_person}将在年度股东大会后卸任董事长，由持股{pct}%的{person}接任。"),
    ("产品召回", "{product}电热水壶召回{big}台，公司为此承担费用{_wan}万元。"),
    ("在手订单", "年末在手订单金额为{yi}亿元，足以支撑约{_months}个月的生产。"),
    ("员工流失", "员工流失率达到{margin}%，仍有{units}个工程师岗位空缺。"),
    ("反垄断罚款", "因与{company}交换价格信息，市场监管部门对{org}处以{wan}万元罚款。"),
    ("合资项目", "与{company}合资在{_town}建设电池组工厂的项目已获最终批准，总投资{yi}亿元。"),
    ("养老金缺口", "下调折现率后，养老金缺口扩大至{wan}万元。"),
    ("资本开支", "来年资本开支预算为{yi}亿元，其中大部分用于{town}基地。"),
    ("股份回购", "公司斥资{wan}万元回购了占总股本{_ratio}%的股份。"),
    ("用水量", "各工厂用水量下降{pct}%，提前两年完成目标。"),
    ("订阅用户", "{product}订阅服务上线第一年付费用户达到{big}户。"),
    ("准时交付", "{town}仓库投入使用后，订单准时交付率提高到{ontime}%。"),
    ("火灾", "{_month}月{town}工厂发生火灾，停产{_weeks}周，造成损失{wan}万元。"),
    ("市政合同", "公司中标{town}有轨电车车队维护合同，合同金额{wan}万元。"),
    ("区域销售", "主要批发商停业后，{town}地区销售额下降了{pct}%。"),
    ("供货协议", "{company}同意在{_year}年前以每吨{price}元的固定价格供应集团全部铝材。"),
    ("研发团队", "研发总监{person}带领{units}名科研人员，重点攻关酶法塑料回收技术。"),
    ("洪灾理赔", "{_month}月洪灾的保险理赔预计可收回{wan}万元。"),
]

# -- routine sentence templates ------------------------------------------------------------------
# {topic} is the section's topic in lower case (English), {Body}/{body} a committee, {doc} a
# document, {period} how often (adverb), {periodic} how often (adjective), {org} the organisation.
# The small numbers in them (30-day, Section 4, clause 3.2) repeat on purpose: a sentence with a
# number is not by that alone a key fact.

EN_ROUTINE = [
    "The {topic} team met {period} as planned, and the minutes of each meeting were filed with the company secretary.",
    "{Body} reviewed the {topic} procedures during the year and saw no need for changes.",
    "All {topic} staff completed the mandatory annual refresher training on schedule.",
    "No exceptions were noted in the {topic} area during the routine internal checks.",
    "Documents relating to {topic} were archived in line with {doc}.",
    "The usual 30-day review period applied to all new {topic} guidelines before they took effect.",
    "In accordance with Section 4 of the policy, {topic} records were retained for the standard period.",
    "{Body} received the {topic} report at each of its scheduled meetings.",
    "Actions arising from last year's {topic} review have all been closed.",
    "The {topic} function continued to operate within its approved budget envelope.",
    "Minor updates were made to {doc} to reflect changes in job titles.",
    "Attendance at {topic} briefings remained at the usual level.",
    "Requests for {topic} support were answered within the target of 5 business days.",
    "The {topic} contact list was checked and brought up to date.",
    "As in previous years, {body} approved the {topic} work plan at the start of the year.",
    "Routine correspondence on {topic} matters was logged and answered.",
    "There were no changes to the reporting lines of the {topic} function.",
    "A self-assessment of {topic} controls was completed and the results were filed.",
    "The {topic} chapter of {doc} was re-read by its owners and confirmed as current.",
    "Copies of the signed {topic} forms were kept both on paper and in the electronic archive.",
    "The annual {topic} questionnaire was circulated to managers and returned on time.",
    "Meeting rooms for {topic} workshops were booked through the usual facilities process.",
    "Terms of reference for the {topic} working group were reaffirmed without amendment.",
    "Staff were reminded to follow clause 3.2 of the procedures when handling {topic} files.",
    "Internal newsletters carried the customary {periodic} update on {topic}.",
    "The {topic} calendar for the coming year was prepared and shared with all departments.",
    "Spot checks on {topic} paperwork found the files complete and correctly indexed.",
    "Version 2.4 of the {topic} template remained in use throughout the period.",
    "Induction sessions for new joiners included the standard module on {topic}.",
    "Feedback from the {topic} survey was broadly consistent with earlier years.",
    "Open items on the {topic} tracker were reviewed {period}, and none was overdue.",
    "The {topic} handbook was reprinted with minor formatting corrections.",
    "{Body} noted the {topic} update and asked for it to be circulated to members.",
    "Access permissions for {topic} systems were recertified within the usual 90 days.",
    "Responsibility for {topic} filing remained with the same administrative team.",
    "The {topic} budget lines were reconciled to the general ledger at each month end.",
    "Procedures for escalating {topic} queries were restated in the staff bulletin.",
    "No formal complaints about the {topic} process were received during the period.",
    "The {topic} entries in {doc} were reviewed and left unchanged.",
    "Working papers supporting the {topic} figures were kept for 12 months after sign-off.",
    "A walkthrough of {topic} controls was carried out with the process owners.",
    "The regular {periodic} check of {topic} data quality took place as usual.",
    "Templates for {topic} submissions were aligned with the house style of {org}.",
    "Deadlines for {topic} returns were met in every reporting cycle.",
    "Training materials on {topic} were refreshed to use current examples.",
    "The {topic} office kept its usual opening hours throughout the year.",
    "Notes of each {topic} review were circulated within 10 working days of the meeting.",
    "Duplicate {topic} records found during the clean-up were merged.",
    "Each department nominated a {topic} contact, as the policy requires.",
    "The {topic} filing index was cross-checked against {doc}.",
    "Routine maintenance of the {topic} shared drive was completed out of hours.",
    "Sign-off of the {topic} checklist followed the usual two-stage approval.",
    "{Body} confirmed that the {topic} arrangements remained fit for purpose.",
    "The {topic} glossary was extended with a handful of new terms.",
    "Staff queries on {topic} were handled by the help desk in the normal way.",
    "The next review of the {topic} policy falls in the ordinary two-year cycle.",
    "Supporting schedules for {topic} were attached to the {periodic} management pack.",
    "Archived {topic} files older than the retention period were destroyed under supervision.",
    "Observers from other departments attended one {topic} session as part of the exchange programme.",
    "A lessons-learned note on {topic} was added to the knowledge base.",
    "Reference data used by the {topic} team was checked against the master list.",
    "The {topic} performance indicators were presented in the usual format.",
    "Owners of open {topic} actions confirmed their deadlines at the 60-day checkpoint.",
    "The filing of {topic} declarations was completed within 14 days of the period end.",
    "{org} continued to apply its standard approach to {topic} across all sites.",
    "Questions raised by {body} about {topic} were answered at the following meeting.",
]

ZH_ROUTINE = [
    "{topic}工作小组按计划{period}召开例会，会议纪要均已交董事会秘书处存档。",
    "{body}在年内对{topic}相关流程进行了梳理，认为无需调整。",
    "{topic}条线全体员工按时完成了年度必修复训。",
    "例行内部检查中，{topic}领域未发现例外事项。",
    "{topic}相关文件已按照{doc}的要求归档。",
    "新的{topic}工作指引在生效前均经过惯常的30天审阅期。",
    "根据制度第4节的规定，{topic}记录按标准期限保存。",
    "{body}在每次例会上听取了{topic}工作汇报。",
    "上一年度{topic}检查中提出的整改事项均已完成。",
    "{topic}部门在核定的预算范围内正常运转。",
    "因部分岗位名称发生变化，{doc}作了少量文字修订。",
    "{topic}专题培训的出勤情况与往年持平。",
    "{topic}方面的支持请求均在5个工作日的目标时限内得到答复。",
    "{topic}联系人名单已经核对并更新。",
    "与往年一样，{body}在年初审议通过了{topic}年度工作计划。",
    "涉及{topic}事项的日常来函均已登记并回复。",
    "{topic}职能的汇报关系没有变化。",
    "{topic}内部控制自评已经完成，评估结果已存档。",
    "{doc}中有关{topic}的章节经负责人复核，确认内容仍然有效。",
    "签字后的{topic}表单同时保存纸质版和电子版。",
    "年度{topic}调查问卷已发放给各部门负责人，并按时收回。",
    "{topic}研讨会所需会议室均通过行政部门的常规流程预订。",
    "{topic}工作组的职责范围经重新确认，未作修改。",
    "公司提醒员工在处理{topic}档案时遵守管理办法第3.2条。",
    "内部简报照例{period}刊登{topic}工作动态。",
    "下一年度的{topic}工作日历已编制完成，并发送至各部门。",
    "对{topic}书面材料的抽查显示，档案完整且编号正确。",
    "报告期内，{topic}模板一直沿用2.4版。",
    "新员工入职培训照常包含{topic}标准课程。",
    "{topic}满意度调查的反馈结果与往年基本一致。",
    "{topic}跟踪表中的未结事项{period}检查一次，没有逾期事项。",
    "{topic}手册重新印制，仅修正了个别排版错误。",
    "{body}听取了{topic}情况通报，并要求将材料分发给各位成员。",
    "{topic}系统的访问权限已在惯常的90天内完成重新认证。",
    "{topic}文件的归档工作仍由原行政团队负责。",
    "{topic}预算科目在每个月末均与总账进行了核对。",
    "员工简报重申了{topic}问题的逐级上报程序。",
    "报告期内未收到针对{topic}流程的正式投诉。",
    "{doc}中的{topic}条目经复核后保持不变。",
    "支持{topic}数据的工作底稿在签字确认后保留12个月。",
    "公司与流程负责人一起对{topic}控制措施进行了穿行测试。",
    "{periodic}{topic}数据质量例行检查已经完成。",
    "{topic}报送材料的模板已与{org}的统一格式保持一致。",
    "各报告期的{topic}报表均在截止日期前报送。",
    "{topic}培训教材已经更新，改用近期的案例。",
    "{topic}办公室全年保持正常办公时间。",
    "每次{topic}评审会议的纪要均在10个工作日内分发。",
    "清理过程中发现的重复{topic}记录已经合并。",
    "各部门均按制度要求指定了一名{topic}联络人。",
    "{topic}档案索引已与{doc}进行交叉核对。",
    "{topic}共享盘的例行维护安排在非工作时间完成。",
    "{topic}检查清单的签批沿用惯常的两级审批。",
    "{body}确认现行{topic}安排仍然适用。",
    "{topic}术语表新增了若干条目。",
    "员工对{topic}的咨询照常由服务台统一处理。",
    "{topic}制度的下一次审阅将按惯例的两年周期进行。",
    "{topic}附表已随{periodic}管理报告一并提交。",
    "超过保管期限的{topic}档案已在监督下销毁。",
    "作为部门交流计划的一部分，其他部门人员列席了一次{topic}会议。",
    "知识库中新增了一份{topic}经验总结。",
    "{topic}团队使用的基础数据已与主数据清单核对一致。",
    "{topic}关键绩效指标仍按惯常格式列示。",
    "在第60天的节点检查中，{topic}各项任务的责任人确认了完成期限。",
    "{topic}申报工作在期末后14天内全部完成。",
    "{org}在各个厂区继续采用统一的{topic}管理办法。",
    "{body}就{topic}提出的问题已在下次会议上得到答复。",
]

EN_BODIES = ["the steering committee", "the audit committee", "the working group", "the management team",
             "the review panel", "the oversight group"]
EN_DOCS = ["the procedures manual", "the risk register", "the policy handbook", "the document index",
           "the controls checklist", "the records schedule"]
EN_PERIODS = ["monthly", "every quarter", "twice a year"]
EN_PERIODIC = ["monthly", "quarterly", "half-yearly"]
ZH_BODIES = ["管理委员会", "审计委员会", "专项工作组", "经营管理层", "评审小组", "监督小组"]
ZH_DOCS = ["《内部管理制度汇编》", "《风险登记册》", "《制度手册》", "《文件目录》", "《内控检查清单》",
           "《档案保管期限表》"]
ZH_PERIODS = ["每月", "每季度", "每半年"]
ZH_PERIODIC = ["月度", "季度", "半年度"]


# -- numbers -------------------------------------------------------------------------------------


def _decimal(rng: random.Random, low: float, high: float, places: int) -> str:
    """A decimal in [low, high] whose last digit is not 0, so that it reads as a measured figure."""
    scale = 10**places
    while True:
        value = rng.randint(round(low * scale), round(high * scale))
        if value % 10:
            return f"{value / scale:.{places}f}"


def _integer(rng: random.Random, low: int, high: int, grouped: bool) -> str:
    """A non-round integer in [low, high], with thousands separators when `grouped`."""
    while True:
        value = rng.randint(low, high)
        if value % 10:
            return f"{value:,}" if grouped else str(value)


NumberDraw = Callable[[random.Random, Language], tuple[str, str]]  # -> (as written, the key)


def _plain(draw: Callable[[random.Random], str]) -> NumberDraw:
    """A number slot whose key is the number exactly as written, in either language."""

    def number(rng: random.Random, language: Language) -> tuple[str, str]:
        written = draw(rng)
        return written, written

    return number


def _percent(low: float, high: float) -> NumberDraw:
    """A percentage slot; Chinese templates write the % sign themselves, English ones get either spelling."""

    def number(rng: random.Random, language: Language) -> tuple[str, str]:
        written = _decimal(rng, low, high, 1)
        if language == "zh":
            return written, written
        return written + rng.choice((" percent", "%")), written

    return number


NUMBERS: dict[str, NumberDraw] = {
    "money": _plain(lambda rng: _decimal(rng, 12, 940, 1)),
    "bn": _plain(lambda rng: _decimal(rng, 1.1, 9.8, 1)),
    "staff": _plain(lambda rng: _integer(rng, 1100, 24000, grouped=True)),
    "ren": _plain(lambda rng: _integer(rng, 1100, 24000, grouped=True)),
    "units": _plain(lambda rng: _integer(rng, 110, 980, grouped=False)),
    "pct": _percent(1.5, 44.5),
    "margin": _percent(2.1, 19.8),
    "ontime": _percent(81.1, 99.4),
    "rate": _plain(lambda rng: _decimal(rng, 0.21, 2.95, 2)),
    "share": _plain(lambda rng: _decimal(rng, 0.12, 2.85, 2)),
    "coupon": _plain(lambda rng: _decimal(rng, 2.1, 7.9, 2)),
    "big": _plain(lambda rng: _integer(rng, 12000, 940000, grouped=True)),
    "price": _plain(lambda rng: _integer(rng, 1100, 24000, grouped=True)),
    "yi": _plain(lambda rng: _decimal(rng, 1.2, 98.6, 1)),
    "wan": _plain(lambda rng: _integer(rng, 1200, 9800, grouped=True)),
    "pay": _plain(lambda rng: _integer(rng, 180, 960, grouped=False)),
    "ratio": _plain(lambda rng: _decimal(rng, 1.1, 3.9, 1)),
    "months": _plain(lambda rng: str(rng.randint(14, 23))),
    "weeks": _plain(lambda rng: str(rng.randint(3, 9))),
    "n": _plain(lambda rng: str(rng.randint(3, 9))),
    "day": _plain(lambda rng: str(rng.randint(2, 27))),
}


# -- names ---------------------------------------------------------------------------------------


class NamePool:
    """Draws invented names for one report, never the same one twice."""

    def __init__(self, rng: random.Random, language: Language, year: int) -> None:
        self.rng, self.language, self.year = rng, language, year
        self.used: set[str] = set()

    def draw(self, kind: str) -> tuple[str, str]:
        """(the name as written, the key a summary must contain) for a name slot of `kind`."""
        for _ in range(200):
            written, key = self._candidate(kind)
            if key not in self.used:
                self.used.add(key)
                return written, key
        raise RuntimeError(f"name pool for {kind!r} ({self.language}) is exhausted")

    def _candidate(self, kind: str) -> tuple[str, str]:
        rng, zh = self.rng, self.language == "zh"
        if kind == "town":
            town = rng.choice(ZH_TOWNS if zh else EN_TOWNS)
            # 临溪市 is often shortened to 临溪 in a summary; the place name without 市/镇/县 is the key.
            return town, (town[:-1] if zh and town[-1] in "市镇县" else town)
        if kind == "person":
            if zh:
                name = rng.choice(ZH_SURNAMES) + rng.choice(ZH_GIVEN_NAMES)
                return name, name
            surname = rng.choice(EN_SURNAMES)  # summaries often keep only the surname
            return f"{rng.choice(EN_FIRST_NAMES)} {surname}", surname
        if kind == "company":
            stem = rng.choice(ZH_COMPANY_STEMS if zh else EN_COMPANY_STEMS)
            suffix = rng.choice(ZH_COMPANY_SUFFIXES if zh else EN_COMPANY_SUFFIXES)
            return (stem + suffix if zh else f"{stem} {suffix}"), stem
        if kind == "product":
            product = rng.choice(ZH_PRODUCTS if zh else EN_PRODUCTS)
            return product, product
        raise KeyError(f"unknown name slot kind {kind!r}")


NAME_KINDS = frozenset({"town", "person", "company", "product"})


def _calendar(kind: str, rng: random.Random, language: Language, year: int) -> str:
    """A month (name in English, number before 月 in Chinese) or a year after the report's; never keys."""
    if kind == "year":
        return str(year + rng.randint(1, 4))
    month = rng.randint(1, 12)
    return str(month) if language == "zh" else EN_MONTHS[month - 1]

# -- numbers as the scorers and the collision check read them ------------------------------------

# A number: digits with optional thousands separators and decimals, not glued to a letter or a
# preceding digit/point (so "Q3", "CO2" and the "1" of "v2.1" are not numbers).
NUMBER = re.compile(r"(?<![A-Za-z0-9.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")


def number_value(written: str) -> Decimal:
    """The value of a number as written: thousands separators removed, so "1,140" == "1140"."""
    return Decimal(written.replace(",", ""))


def numbers_in(text: str) -> set[Decimal]:
    """Every number in `text`, by value."""
    return {number_value(match.group()) for match in NUMBER.finditer(text)}


def name_in(name: str, text: str) -> bool:
    """Whether `name` occurs in `text`: as a whole word, any case, for Latin names; as a substring for Chinese."""
    if re.search(r"[\u4e00-\u9fff]", name):
        return name in text
    return re.search(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", text, re.IGNORECASE) is not None


def key_in(key: str, is_number: bool, text: str) -> bool:
    """Whether a fact's key occurs in `text` (numbers by value, names by `name_in`)."""
    return number_value(key) in numbers_in(text) if is_number else name_in(key, text)


# -- facts ---------------------------------------------------------------------------------------


def _slots(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _slot_kind(slot: str) -> tuple[str, bool]:
    """(kind, is_key) of a slot name: "_year" -> ("year", False), "person2" -> ("person", True)."""
    return slot.lstrip("_").rstrip("0123456789"), not slot.startswith("_")


def draw_fact(template: str, org: str, names: NamePool, rng: random.Random) -> tuple[str, list[str], list[str]]:
    """(sentence, keys, number keys) of one fact template filled with fresh names and numbers."""
    values: dict[str, str] = {"org": org}
    keys: list[str] = []
    number_keys: list[str] = []
    for slot in _slots(template):
        if slot in values:
            continue
        kind, is_key = _slot_kind(slot)
        if kind in ("month", "year"):
            values[slot] = _calendar(kind, rng, names.language, names.year)
            continue  # dates are context: a summary may rightly leave them out
        if kind in NAME_KINDS:
            written, key = names.draw(kind)
        else:
            written, key = NUMBERS[kind](rng, names.language)
        values[slot] = written
        if is_key:
            keys.append(key)
            if kind not in NAME_KINDS:
                number_keys.append(key)
    return template.format(**values), keys, number_keys


def _collides(sentence: str, keys: list[str], number_keys: list[str], elsewhere: str,
              others: list[PlantedFact]) -> bool:
    """Whether a candidate fact could be credited wrongly: its keys occur in the rest of the report, or
    its sentence contains another fact's keys (then a summary could keep one and score the other)."""
    if any(key_in(key, key in number_keys, elsewhere) for key in keys):
        return True
    return any(key_in(key, key in fact.number_keys, sentence) for fact in others for key in fact.keys)


# -- routine prose -------------------------------------------------------------------------------


class RoutineDeck:
    """Routine sentence templates dealt in shuffled order, so a section repeats one only after using all."""

    def __init__(self, rng: random.Random, language: Language) -> None:
        self.rng, self.language = rng, language
        self.pile: list[str] = []

    def deal(self) -> str:
        if not self.pile:
            self.pile = list(ZH_ROUTINE if self.language == "zh" else EN_ROUTINE)
            self.rng.shuffle(self.pile)
        return self.pile.pop()


def _routine_sentence(rng: random.Random, language: Language, template: str, topic: str, org: str) -> str:
    zh = language == "zh"
    body = rng.choice(ZH_BODIES if zh else EN_BODIES)
    return template.format(
        topic=topic if zh else topic.lower(), body=body, Body=body[:1].upper() + body[1:],
        doc=rng.choice(ZH_DOCS if zh else EN_DOCS), period=rng.choice(ZH_PERIODS if zh else EN_PERIODS),
        periodic=rng.choice(ZH_PERIODIC if zh else EN_PERIODIC), org=org,
    )


def _join(sentences: list[str], language: Language) -> str:
    return ("" if language == "zh" else " ").join(sentences)


def _routine_section(rng: random.Random, language: Language, topic: str, org: str, budget: int) -> list[list[str]]:
    """Paragraphs (lists of sentences) of routine prose, about `budget` tokens of them."""
    deck = RoutineDeck(rng, language)
    paragraphs: list[list[str]] = []
    tokens = 0
    while True:
        paragraph = [_routine_sentence(rng, language, deck.deal(), topic, org) for _ in range(rng.randint(3, 6))]
        size = count_tokens(_join(paragraph, language)) + 1  # +1: the blank line between paragraphs
        # Take the paragraph if that lands nearer the budget than stopping short would.
        if paragraphs and tokens + size / 2 > budget:
            return paragraphs
        paragraphs.append(paragraph)
        tokens += size


def _insert(paragraphs: list[list[str]], sentence: str, position: str, rng: random.Random) -> None:
    """Put a fact sentence at the start, the middle or the end of a section."""
    if position == "start":
        paragraphs[0].insert(0, sentence)
    elif position == "end":
        paragraphs[-1].append(sentence)
    else:
        paragraph = paragraphs[len(paragraphs) // 2]
        paragraph.insert(rng.randint(1, max(1, len(paragraph) - 1)), sentence)


# -- the report ----------------------------------------------------------------------------------


def _title(org: str, year: int, language: Language) -> str:
    return f"# {org}{year}年度经营报告" if language == "zh" else f"# {org}: Annual Operating Report {year}"


def _heading(number: int, topic: str) -> str:
    return f"## {number}. {topic}"


def _render(title: str, topics: list[str], sections: list[list[list[str]]], language: Language) -> str:
    parts = [title]
    for number, (topic, paragraphs) in enumerate(zip(topics, sections), start=1):
        parts.append(_heading(number, topic))
        parts.extend(_join(paragraph, language) for paragraph in paragraphs)
    return "\n\n".join(parts) + "\n"


def _plant_facts(rng: random.Random, language: Language, org: str, year: int, skeleton: str,
                 fact_sections: list[int]) -> list[PlantedFact]:
    """One fact per chosen section, each from a different template, none colliding with the rest."""
    templates = list(ZH_FACTS if language == "zh" else EN_FACTS)
    rng.shuffle(templates)
    names = NamePool(rng, language, year)
    facts: list[PlantedFact] = []
    for section, (label, template) in zip(fact_sections, templates):
        for _ in range(50):
            sentence, keys, number_keys = draw_fact(template, org, names, rng)
            elsewhere = skeleton + "\n".join(fact.sentence for fact in facts)
            if not _collides(sentence, keys, number_keys, elsewhere, facts):
                break
        else:
            raise RuntimeError(f"could not plant a non-colliding {label!r} fact")
        facts.append(PlantedFact(section, sentence, keys, number_keys, label, rng.choice(POSITIONS)))
    return facts


def make_report(sections: int, language: Language, seed: int) -> PlantedReport:
    """A report of `sections` sections in `language` ("en" or "zh"), the same for the same seed."""
    topic_pool = ZH_TOPICS if language == "zh" else EN_TOPICS
    if language not in ("en", "zh"):
        raise ValueError(f"language must be en or zh, not {language!r}")
    if not 1 <= sections <= len(topic_pool):
        raise ValueError(f"sections must be 1..{len(topic_pool)}, not {sections}")
    rng = random.Random(f"planted-report:{language}:{sections}:{seed}")
    org = rng.choice(ZH_ORGS if language == "zh" else EN_ORGS)
    year = rng.randint(2023, 2026)
    topics = rng.sample(topic_pool, sections)
    budget = section_tokens(sections)
    bodies = [_routine_section(rng, language, topic, org, budget) for topic in topics]
    title = _title(org, year, language)
    fact_sections = sorted(rng.sample(range(1, sections + 1), fact_count(sections)))
    facts = _plant_facts(rng, language, org, year, _render(title, topics, bodies, language), fact_sections)
    for fact in facts:
        _insert(bodies[fact.section - 1], fact.sentence, fact.position, rng)
    text = _render(title, topics, bodies, language)
    return PlantedReport(text, facts, language, sections, seed, org, topics)


def report_tokens(report: PlantedReport) -> int:
    """The report's length in cl100k tokens, as longdoc's budgets count it."""
    return count_tokens(report.text)
